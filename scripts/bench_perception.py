"""Benchmark perception: voice cost per second of audio, `analyze` speed, live-call analysis.

    .venv/bin/python scripts/bench_perception.py [--data ../shared/data] [--no-live]

Face latency per frame has its own script: scripts/bench_face.py.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from bench_call import start_server, stop_server

from avatar_agent.perception.audio import Downsampler, load_audio
from avatar_agent.perception.offline import analyze_file
from avatar_agent.perception.prosody import ProsodyTracker, analyze_prosody
from avatar_agent.perception.vad import VoiceActivity
from avatar_agent.testing.client import CustomerClient

REPO = Path(__file__).resolve().parents[1]


def ms_per_second(fn: object, seconds: float) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - t0) / seconds * 1000


def bench_voice(grid: list[Path]) -> None:
    x = np.concatenate([load_audio(p)[0] for p in grid])
    dur = x.size / 16000
    pcm48 = np.repeat((x * 32767).astype(np.int16), 3)
    packed = np.stack([pcm48, pcm48], 1).reshape(1, -1)  # 48 kHz stereo as WebRTC gives it

    def stream(obj: ProsodyTracker | VoiceActivity) -> None:
        for i in range(0, x.size, 320):
            obj.push(x[i : i + 320])

    def down() -> None:
        d = Downsampler(48000, 2)
        for i in range(0, pcm48.size, 960):
            d.push(packed[:, 2 * i : 2 * (i + 960)])

    vad = VoiceActivity()
    print(f"voice, {dur:.1f} s of GRID speech, cost per second of audio:")
    print(f"  prosody offline      {ms_per_second(lambda: analyze_prosody(x), dur):6.1f} ms")
    print(f"  prosody live (20 ms) {ms_per_second(lambda: stream(ProsodyTracker()), dur):6.1f} ms")
    print(f"  VAD live (20 ms)     {ms_per_second(lambda: stream(vad), dur):6.1f} ms")
    print(f"  48k stereo -> 16k    {ms_per_second(down, dur):6.1f} ms")


def bench_analyze(clips: list[Path]) -> None:
    print("analyze (face + voice, models already loaded after the first clip):")
    analyze_file(clips[0])  # load the models once, as a long-running process would
    for clip in clips:
        r = analyze_file(clip)
        print(f"  {clip.name:32s} {r.duration:5.1f} s in {r.elapsed_s:5.2f} s = "
              f"{r.speed:5.1f}x real time ({len(r.face)} frames at {r.fps} fps)")


async def live_share(url: str, clip: Path) -> dict[str, float]:
    async def metric(http: aiohttp.ClientSession, prefix: str) -> float:
        async with http.get(url + "/metrics") as r:
            for line in (await r.text()).splitlines():
                if line.startswith(prefix):
                    return float(line.split()[-1])
        raise SystemExit(f"missing metric {prefix}")

    names = {
        "in": 'avatar_agent_frames_in_total{kind="video"}',
        "analysed": 'avatar_agent_frames_analysed_total{kind="face"}',
        "dropped": 'avatar_agent_frames_dropped_total{kind="video",where="receive"}',
    }
    async with aiohttp.ClientSession() as http:
        before = {k: await metric(http, v) for k, v in names.items()}
        client = CustomerClient(url, clip, consent=True)
        try:
            await client.connect(http)
            await client.wait_for(lambda: client.rx.video_times, 15)
            await asyncio.sleep(3.2)  # the clip lasts 3 s
            after = {k: await metric(http, v) for k, v in names.items()}
            await client.hangup(http)
        finally:
            await client.close()
    return {k: after[k] - before[k] for k in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-live", action="store_true", help="skip the live-call measurement")
    args = ap.parse_args()
    grid = sorted((args.data / "talking_face" / "grid").glob("*.mpg"))
    bench_voice(grid)
    bench_analyze([args.data / "talking_face" / "pexels" / "WolfgangLanger_Pexels.mp4", grid[0]])
    if args.no_live:
        return
    with tempfile.TemporaryDirectory() as d:
        proc, url = start_server(Path(d))
        try:
            s = asyncio.run(live_share(url, grid[0]))
        finally:
            stop_server(proc)
    total = s["in"] or 1
    print(f"live call (GRID clip at 25 fps, face analysis at 15 fps): {s['in']:.0f} frames in, "
          f"{s['analysed']:.0f} analysed ({s['analysed'] / total:.0%}), "
          f"{s['dropped']:.0f} dropped ({s['dropped'] / total:.0%})")


if __name__ == "__main__":
    main()
