"""The avatar's VP8 encoder: aiortc's, with settings for a drawn picture.

aiortc's `Vp8Encoder` is tuned for camera video: libvpx's temporal denoiser on
(`noise-sensitivity` 4), `cpu-used` -6 and no skipping of unchanged blocks. The avatar
has no sensor noise and a still room behind it, so denoising only costs time (and
blurs), and most blocks are unchanged from one frame to the next. Measured with
`scripts/bench_encoder.py` on the avatar's own frames: about half the encoding time
per frame at the same bitrate, with a PSNR at least as high.

Everything else is aiortc's: the bitrate it is given from the browser's estimates,
keyframes on the browser's request, the RTP packetisation.
"""

from __future__ import annotations

from typing import Any

import av
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import VIDEO_TIME_BASE
from av.frame import Frame

# What differs from aiortc 1.16's Vp8Encoder (the rest is the same).
AVATAR_VP8_OPTIONS = {
    "cpu-used": "-12",  # faster motion search; realtime deadline as before
    "noise-sensitivity": "0",  # no denoiser: a rendered picture has no noise
    "static-thresh": "300",  # blocks this close to the last frame are not re-coded
}


def vp8_options(bitrate: int, tuned: bool = True) -> dict[str, str]:
    """libvpx options through FFmpeg for a constant `bitrate` (aiortc's, tuned or not)."""
    options = {
        # rc_buf_sz = 1000 ms: FFmpeg sets rc_buf_sz = bufsize * 1000 / bit_rate
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),  # minrate = maxrate = bit_rate is constant bitrate
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    if tuned:
        options.update(AVATAR_VP8_OPTIONS)
    return options


def vp8_codec(width: int, height: int, bitrate: int, tuned: bool = True) -> Any:
    """A libvpx encoder context as aiortc makes one, with `vp8_options()`.

    Its time base is the RTP video clock (90 kHz), the one the avatar's frames carry:
    frame times reach libvpx unrounded (its rate control sees each frame's true
    duration, a skipped frame included) and come back as they went in.
    """
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.time_base = VIDEO_TIME_BASE
    codec.gop_size = 3000  # keyframes only when the browser asks
    codec.qmin, codec.qmax = 2, 56
    codec.options = vp8_options(bitrate, tuned)
    # one thread: calls run side by side, each encoder's threads would only contend
    codec.thread_count = 1
    return codec


class AvatarVp8Encoder(Vp8Encoder):
    """aiortc's `Vp8Encoder` (keyframes, packetisation, timestamps) on a `vp8_codec()`.

    aiortc makes its encoder context inside `encode()` whenever it has none, or the
    frame size or the bitrate moved (by over 10 %). Ours is made first on the same
    conditions, so aiortc always finds one it keeps.
    """

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame)
        codec, bitrate = self.codec, int(self.target_bitrate)
        if (codec is None or (frame.width, frame.height) != (codec.width, codec.height)
                or abs(bitrate - (codec.bit_rate or 0)) > 0.1 * (codec.bit_rate or 0)):
            self.codec = vp8_codec(frame.width, frame.height, bitrate)
        payloads, timestamp = super().encode(frame, force_keyframe)
        return payloads, int(timestamp)

