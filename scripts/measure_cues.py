"""Cue reaction latency, measured from outside as a customer.

Starts a server whose affect comes from a script (calm, then furious at a known
time), joins a call with a real GRID clip, and records the avatar video it receives.
The face mesh (perception.face) on each received frame gives the avatar's face width (grows as
it leans in) and the gap between inner brows and eyes (shrinks as it frowns). The
latency is the time from the first `affect` message with a level above calm to the first
received frame where that measure has left its calm range, both on the client's clock.

    .venv/bin/python scripts/measure_cues.py [--clip GRID.mpg] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.testing.client import CustomerClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the server spawner is test support, not the product

from tests.support.server import spawn_server, stop_server  # noqa: E402

FURIOUS_AT = 6.0


def measures(frame: np.ndarray, faces: FaceAnalyzer) -> tuple[float, float] | None:
    """(face width / frame width, inner-brow-to-eye gap / face height), or None."""
    points = faces.detect(frame)
    if points is None:
        return None
    h, w = frame.shape[:2]

    def d(a: int, b: int) -> float:
        return math.hypot((points[a, 0] - points[b, 0]) * w, (points[a, 1] - points[b, 1]) * h)

    face_h = d(10, 152)
    brow = (d(55, 133) + d(285, 362)) / 2.0
    return d(234, 454) / w, brow / face_h


def first_change(times: np.ndarray, values: np.ndarray, t0: float, sign: float) -> float | None:
    """First time after t0 where values leave the pre-t0 range by 3 sigma (and 0.5 %)."""
    before = values[times < t0]
    if len(before) < 5:
        return None
    mu, sd = float(before.mean()), float(before.std())
    limit = max(3.0 * sd, 0.005 * abs(mu))
    after = (times >= t0) & (sign * (values - mu) > limit)
    hits = np.nonzero(after)[0]
    return float(times[hits[0]] - t0) if len(hits) else None


async def one_call(url: str, clip: Path) -> tuple[float | None, float | None]:
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(url, clip, consent=True)
        try:
            await client.connect(http)
            await client.wait_for(lambda: client.rx.video_times, 15)
            await asyncio.sleep(FURIOUS_AT - 2.5)
            client.rx.keep_video = True
            upset = lambda: [e for e in client.rx.events  # noqa: E731
                             if e.get("type") == "affect" and e.get("level") != "calm"]
            await client.wait_for(upset, 20)
            await asyncio.sleep(3.0)
            client.rx.keep_video = False
            frames = list(client.rx.video)
            t_level = upset()[0]["_received"] if upset() else None
            await client.hangup(http)
        finally:
            await client.close()
    if t_level is None:
        print("the level never left calm")
        return None, None
    rows = []
    with FaceAnalyzer(max_faces=1) as faces:
        for t, frame in frames:
            m = measures(frame, faces)
            if m is not None:
                rows.append((t, *m))
    arr = np.array(rows)
    print(f"  {len(frames)} frames received, face found in {len(rows)}")
    for name, col in (("face width", 1), ("brow gap", 2)):
        pre, post = arr[arr[:, 0] < t_level, col], arr[arr[:, 0] > t_level + 2.0, col]
        print(f"  {name}: calm {pre.mean():.4f} ± {pre.std():.4f}, upset {post.mean():.4f}")
    lean = first_change(arr[:, 0], arr[:, 1], t_level, +1.0)
    brow = first_change(arr[:, 0], arr[:, 2], t_level, -1.0)
    return lean, brow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    grid = REPO.parent / "shared" / "data" / "talking_face" / "grid"
    ap.add_argument("--clip", type=Path, default=sorted(grid.glob("*.mpg"))[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "script.yaml").write_text(
            f"- {{at: 0, anger_index: 5}}\n- {{at: {FURIOUS_AT}, anger_index: 95}}\n")
        extra = f"affect:\n  script: {work / 'script.yaml'}\n"
        proc, url = spawn_server(work, REPO, config_yaml=extra)
        try:
            results = []
            for i in range(args.runs):
                t0 = time.monotonic()
                lean, brow = asyncio.run(one_call(url, args.clip))
                fmt = lambda v: "not seen" if v is None else f"{v * 1000:.0f} ms"  # noqa: E731
                print(f"run {i + 1}: lean visible after {fmt(lean)}, brow after {fmt(brow)} "
                      f"({time.monotonic() - t0:.0f} s)")
                results.append((lean, brow))
        finally:
            stop_server(proc)
    for name, k in (("lean", 0), ("brow", 1)):
        vals = [r[k] * 1000 for r in results if r[k] is not None]
        if vals:
            print(f"{name}: median {np.median(vals):.0f} ms, max {max(vals):.0f} ms "
                  f"over {len(vals)}/{len(results)} runs")


if __name__ == "__main__":
    main()
