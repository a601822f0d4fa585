"""The avatar's VP8 encoder against aiortc's, on the avatar's own frames.

Renders a few seconds of a talking, swaying avatar once, then encodes them with
aiortc 1.16's VP8 settings and with `transport.encoder`'s, at aiortc's default
bitrate and at 1 Mbit/s, and prints encode time per frame, the bitrate reached and
the PSNR of what a browser would decode.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_encoder.py [--frames 300]
"""

from __future__ import annotations

import argparse
import fractions
import math
import time

import av
import cv2
import numpy as np

from avatar_agent.avatar.animator import IdleAnimator
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.transport.encoder import vp8_codec


def frames(n: int) -> tuple[list[np.ndarray], list[av.VideoFrame]]:
    renderer, animator = AvatarRenderer(), IdleAnimator(seed=1)
    pictures, out = [], []
    for i in range(n):
        pose = animator.pose(i / 30, 0.5 + 0.5 * math.sin(i / 3))  # mouth moving as in speech
        yuv = cv2.cvtColor(renderer.render(pose), cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        pictures.append(yuv)
        out.append(frame)
    return pictures, out


def run(pictures: list[np.ndarray], video: list[av.VideoFrame], bitrate: int,
        tuned: bool) -> tuple[float, float, float, float]:
    codec = vp8_codec(640, 480, bitrate, tuned)  # as the avatar's encoder makes it
    t0 = time.perf_counter()
    packets = [p for f in video for p in codec.encode(f)]
    spent = time.perf_counter() - t0
    decoder = av.CodecContext.create("libvpx", "r")
    decoded = [f.to_ndarray(format="yuv420p") for p in packets for f in decoder.decode(p)]
    psnr = [cv2.PSNR(a, b) for a, b in zip(pictures[-len(decoded):], decoded, strict=True)]
    kbits = sum(p.size for p in packets) * 8 / (len(video) / 30) / 1000
    return spent / len(video) * 1000, kbits, float(np.mean(psnr)), float(np.min(psnr))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    pictures, video = frames(args.frames)
    print(f"{'encoder':<8} {'kbit/s set':>10} {'ms/frame':>9} {'kbit/s':>7} "
          f"{'PSNR dB':>8} {'min':>6}")
    for bitrate in (500_000, 1_000_000):
        for name, tuned in (("aiortc", False), ("avatar", True)):
            ms, kbits, mean, low = run(pictures, video, bitrate, tuned)
            print(f"{name:<8} {bitrate // 1000:>10} {ms:>9.2f} {kbits:>7.0f} "
                  f"{mean:>8.2f} {low:>6.2f}")
    print(f"({args.frames} frames of 640x480 at 30 fps, one encoder thread)")


if __name__ == "__main__":
    main()
