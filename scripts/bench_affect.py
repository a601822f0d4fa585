"""Benchmark the affect model: latency per batch size, windows per second, and the shared
engine under many concurrent calls. CPU always; CUDA too when a GPU is present. Then the
speech embedding perception computes for the model (CPU, once a second per speaking call).

The windows carry voice, face, speech embedding and a caller reference with full weight,
so every path of the model (first answer and refinement) is timed.

    .venv/bin/python scripts/bench_affect.py [--model assets/models/affect.pt] [--calls 200]
    .venv/bin/python scripts/bench_affect.py --untrained --quick   # a short smoke run

``--untrained`` times a randomly initialised model of the default size (the timings do
not depend on the weights), for when no trained model of the current format exists.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np
import torch

from avatar_agent.affect.engine import AffectEngine
from avatar_agent.affect.model import AffectNet, AffectWindow, validate_window
from avatar_agent.affect.predictor import AffectPredictor, pick_device
from avatar_agent.affect.reference import Reference
from avatar_agent.perception.features import (
    EXPRESSION,
    F0_COL,
    FACE_DIM,
    FACE_FRAMES,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICED_COL,
    SpeakerBaseline,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM, WINDOW_SAMPLES, SpeechEncoder


def windows(n: int, seed: int = 0) -> list[AffectWindow]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        # raw rows: voiced frames carry a pitch, unvoiced ones NaN
        v = rng.normal(-40, 10, (VOICE_FRAMES, VOICE_DIM)).astype(np.float32)
        v[:, VOICED_COL] = (rng.random(VOICE_FRAMES) < 0.6).astype(np.float32)
        v[v[:, VOICED_COL] < 0.5, F0_COL] = np.nan
        f = rng.normal(0, 0.1, (FACE_FRAMES, FACE_DIM)).astype(np.float32)
        f[:, EXPRESSION] = rng.dirichlet(np.ones(EXPRESSION.stop - EXPRESSION.start),
                                         FACE_FRAMES)
        f[:, PRESENT_COL] = 1
        vb = SpeakerBaseline(
            np.full(VOICE_DIM, -40, np.float32), np.full(VOICE_DIM, 10, np.float32), 10
        )
        fb = SpeakerBaseline(
            np.zeros(FACE_DIM, np.float32), np.full(FACE_DIM, 0.1, np.float32), 10
        )
        s = rng.normal(0, 1, (2, EMBED_DIM)).astype(np.float32)
        ref = Reference(voice=vb, face=fb, speech=s[1],
                        voice_weight=1.0, face_weight=1.0, speech_weight=1.0)
        w = AffectWindow(v, f, s[0], ref)
        validate_window(w)
        out.append(w)
    return out


def latency(pred: AffectPredictor, batch: int, repeat: int) -> tuple[float, float, float]:
    wins = windows(batch)
    for _ in range(5):
        pred.predict(wins)
    if pred.device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pred.predict(wins)  # includes moving results back to the CPU
        times.append(time.perf_counter() - t0)
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    return float(p50), float(p95), batch / (float(np.median(times)))


async def engine_load(pred: AffectPredictor, calls: int, rate_hz: float, seconds: float) -> None:
    engine: AffectEngine[AffectWindow, object] = AffectEngine(
        pred.predict, validate_window, max_batch=64, max_wait_s=0.005
    )
    wins = windows(8)
    lat: list[float] = []

    async def call(i: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep((i / calls) / rate_hz)  # calls are not in step
        end = loop.time() + seconds
        due = loop.time()
        while loop.time() < end:
            t0 = time.perf_counter()
            await engine.submit(f"c{i}", wins[i % len(wins)])
            lat.append(time.perf_counter() - t0)
            due += 1 / rate_hz
            await asyncio.sleep(max(0.0, due - loop.time()))

    t0 = time.perf_counter()
    await asyncio.gather(*(call(i) for i in range(calls)))
    wall = time.perf_counter() - t0
    await engine.close()
    sizes = engine.batch_sizes
    mean_batch = sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values()))
    p50, p95 = np.percentile(lat, [50, 95]) * 1000
    print(f"  engine, {calls} calls at {rate_hz:g} Hz for {seconds:g} s: "
          f"{len(lat) / wall:7.0f} windows/s, mean batch {mean_batch:5.1f}, "
          f"submit->result p50 {p50:6.1f} ms p95 {p95:6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("assets/models/affect.pt"))
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--untrained", action="store_true",
                    help="time a randomly initialised model instead of loading --model")
    ap.add_argument("--quick", action="store_true",
                    help="a short smoke run: few repeats, 1 s of engine load")
    ap.add_argument("--no-speech", action="store_true", help="skip the speech encoder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    repeat, engine_s = (20, 1.0) if args.quick else (200, 5.0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if len(devices) == 1:
        print("no CUDA device available: CPU figures only")
    for dev in devices:
        if args.untrained:
            torch.manual_seed(0)
            pred = AffectPredictor(AffectNet(), pick_device(dev), {})
        else:
            pred = AffectPredictor.load(args.model, dev)
        name = torch.cuda.get_device_name(0) if dev == "cuda" else f"CPU, {args.threads} thread(s)"
        print(f"{dev} ({name}){', untrained weights' if args.untrained else ''}:")
        for batch in (1, 8, 64):
            p50, p95, wps = latency(pred, batch, repeat if batch < 64 else max(5, repeat // 4))
            print(f"  batch {batch:3d}: p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  "
                  f"{wps:8.0f} windows/s")
        asyncio.run(engine_load(pred, args.calls, 4.0, engine_s))
    if args.no_speech:
        return
    encoder = SpeechEncoder.load()
    audio = np.random.default_rng(0).normal(0, 0.05, (8, WINDOW_SAMPLES)).astype(np.float32)
    print(f"speech embedding, 2 s windows (CPU, {args.threads} thread(s)):")
    for batch in (1, 8):
        encoder.embed(audio[:batch])
        times = []
        for _ in range(3 if args.quick else 10):
            t0 = time.perf_counter()
            encoder.embed(audio[:batch])
            times.append(time.perf_counter() - t0)
        ms = float(np.median(times)) * 1000
        print(f"  batch {batch:3d}: p50 {ms:7.1f} ms  {1000 * batch / ms:8.1f} windows/s")


if __name__ == "__main__":
    main()
