"""Latency of face analysis on 640x480 frames (GRID clips upscaled), tracking mode.

    .venv/bin/python scripts/bench_face.py [--data ../shared/data] [--clips 3] [--repeat 2]

Prints p50/p95 of FaceAnalyzer.analyze per frame, of the pure
features_from_landmarks step and of the face-expression network on one crop (as run,
traced and frozen, beside the eager network it was traced from). Frames stay in memory.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
import torch

from avatar_agent.perception.face import FaceAnalyzer, features_from_landmarks
from avatar_agent.perception.face_expression import FaceExpression, face_crop


def load_frames(clip: Path, size: tuple[int, int]) -> list[npt.NDArray[Any]]:
    out: list[npt.NDArray[Any]] = []
    with av.open(str(clip)) as c:
        for fr in c.decode(video=0):
            img = fr.to_ndarray(format="rgb24")
            out.append(cv2.resize(img, size, interpolation=cv2.INTER_LINEAR))
    return out


def pct(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (f"p50 {np.percentile(a, 50):7.3f} ms  p95 {np.percentile(a, 95):7.3f} ms  "
            f"mean {a.mean():7.3f} ms  n={len(a)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2, help="passes over each clip")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    args = ap.parse_args()

    clips = sorted((args.data / "talking_face" / "grid").glob("*.mpg"))[: args.clips]
    if not clips:
        raise SystemExit(f"no GRID clips under {args.data}")
    size = (args.width, args.height)
    analyze_ms: list[float] = []
    detect_ms: list[float] = []
    landmarks: list[npt.NDArray[np.float32]] = []
    found = total = 0
    for clip in clips:
        frames = load_frames(clip, size)
        with FaceAnalyzer() as fa:
            for _ in range(5):  # graph initialisation is not per-frame cost
                fa.analyze(frames[0], 0.0)
            for r in range(args.repeat):
                for i, img in enumerate(frames):
                    t = (r * len(frames) + i) / 25.0
                    t0 = time.perf_counter()
                    f = fa.analyze(img, t)
                    analyze_ms.append(1e3 * (time.perf_counter() - t0))
                    found += f.present
                    total += 1
            for img in frames[:20]:
                t0 = time.perf_counter()
                pts = fa.detect(img)
                detect_ms.append(1e3 * (time.perf_counter() - t0))
                if pts is not None:
                    landmarks.append(pts)

    pure_ms: list[float] = []
    for _ in range(10):
        for pts in landmarks:
            t0 = time.perf_counter()
            features_from_landmarks(pts, args.width, args.height, 0.0)
            pure_ms.append(1e3 * (time.perf_counter() - t0))

    print(f"{len(clips)} GRID clips upscaled to {args.width}x{args.height}, tracking mode, "
          f"face found in {found}/{total} frames")
    print(f"FaceAnalyzer.analyze        {pct(analyze_ms)}")
    print(f"  of which mesh (detect)    {pct(detect_ms)}")
    print(f"features_from_landmarks     {pct(pure_ms)}")

    torch.set_num_threads(1)
    expression = FaceExpression.load()
    crops = [face_crop(frames[0], pts[:, :2] * np.array(size)) for pts in landmarks]
    x = torch.from_numpy(np.stack(crops))[:, None]
    timed: dict[str, list[float]] = {"frozen": [], "eager": []}
    with torch.inference_mode():
        for _ in range(10):
            for i in range(len(x)):
                for name, fn in (("frozen", expression.logits), ("eager", None)):
                    t0 = time.perf_counter()
                    if fn is None:
                        expression.net(x[i:i + 1])
                    else:
                        fn(crops[i])
                    timed[name].append(1e3 * (time.perf_counter() - t0))
    print(f"face expression, as run     {pct(timed['frozen'])}")
    print(f"  the eager network         {pct(timed['eager'])}")


if __name__ == "__main__":
    main()
