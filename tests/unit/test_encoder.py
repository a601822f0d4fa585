"""The avatar's VP8 encoder: real libvpx on the avatar's own frames."""

from __future__ import annotations

import fractions
import math

import av
import cv2
import numpy as np
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from avatar_agent.avatar.animator import IdleAnimator
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.transport.encoder import AVATAR_VP8_OPTIONS, AvatarVp8Encoder, vp8_options


def _frames(n: int) -> list[tuple[np.ndarray, av.VideoFrame]]:
    renderer, animator = AvatarRenderer(), IdleAnimator(seed=3)
    out = []
    for i in range(n):
        yuv = cv2.cvtColor(renderer.render(animator.pose(i / 30, 0.5 + 0.5 * math.sin(i / 3))),
                           cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        out.append((yuv, frame))
    return out


def test_tuned_options_change_only_what_they_say() -> None:
    tuned, stock = vp8_options(500_000), vp8_options(500_000, tuned=False)
    assert {k for k in tuned if tuned[k] != stock[k]} == set(AVATAR_VP8_OPTIONS)
    assert tuned["noise-sensitivity"] == "0" and stock["noise-sensitivity"] == "4"
    assert tuned["minrate"] == tuned["maxrate"] == "500000"  # still constant bitrate


def test_encoded_avatar_decodes_faithfully_with_keyframes_on_request() -> None:
    encoder, decoder = AvatarVp8Encoder(), Vp8Decoder()
    frames = _frames(20)
    psnr, sizes = [], []
    for i, (yuv, frame) in enumerate(frames):
        payloads, timestamp = encoder.encode(frame, force_keyframe=(i == 12))
        assert payloads and timestamp == i * 3000  # RTP clock is the frame's pts (90 kHz)
        data = b"".join(vp8_depayload(p) for p in payloads)
        sizes.append(len(data))
        decoded = decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        assert len(decoded) == 1
        psnr.append(cv2.PSNR(yuv, decoded[0].to_ndarray(format="yuv420p")))
    # a drawn picture at the default 500 kbit/s stays sharp (aiortc's own: ~46 dB)
    assert min(psnr[1:]) > 35, psnr
    # the first frame and the requested one are keyframes: far larger than the rest
    inter = np.median(sizes[1:12])
    assert sizes[0] > 3 * inter and sizes[12] > 3 * inter, sizes
    assert encoder.codec is not None and encoder.codec.thread_count == 1
