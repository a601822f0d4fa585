"""Lip-sync, first audio and barge-in of the avatar, measured from outside as a customer.

    .venv/bin/python scripts/measure_lipsync.py [--url http://127.0.0.1:8080] [--runs 3]

Without --url a server is started with a greeting several sentences long. Each run
joins a call as an aiortc customer and records the avatar's audio and video in
memory. The received frames' mouth opening (MediaPipe face mesh) is cross-correlated
with the received audio envelope over +-300 ms; the two tracks are put on one clock
through their RTCP sender reports, as a browser does (see avatar_agent.testing.measure).
Positive offset = audio later than the mouth. Then a real speech clip is streamed
as the customer's microphone while the avatar talks: barge-in latency is from its
speech onset (sent) to silence of the avatar (received).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # the server spawner is test support, not the product

from avatar_agent.testing.measure import load_clip  # noqa: E402
from avatar_agent.testing.measure_call import (  # noqa: E402
    measure_barge_in,
    measure_lipsync,
    reference_offset,
)
from tests.support.server import spawn_server, stop_server  # noqa: E402

GREETING = (
    "Hello, I am the virtual support assistant. I can help you with orders, deliveries "
    "and billing. Please tell me what happened, and take your time. I will look into it "
    "while we talk, and I will stay with you until it is solved."
)
CLIP = "speech_emotion/ravdess/Actor_01/03-01-01-01-01-01-01.flac"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "n/a"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


async def main(url: str, runs: int, data: Path) -> None:
    print(f"method bias (synthesized audio vs its own mouth curve): "
          f"{reference_offset(GREETING):+.0f} ms")
    offsets, firsts = [], []
    for i in range(runs):
        r = await measure_lipsync(url, seconds=8.0)
        offsets.append(r.offset_ms)
        firsts.append(r.first_audio_ms)
        print(f"run {i + 1}: lip-sync offset {r.offset_ms:+.0f} ms (r={r.correlation:.2f}, "
              f"face in {r.face_frames}/{r.frames} frames, sender reports {r.sender_reports}), "
              f"connected -> first audio {r.first_audio_ms:.0f} ms")
    clip = load_clip(data / CLIP)
    barge, sent, events, replies = [], [], [], []
    for i in range(runs):
        b = await measure_barge_in(url, clip, talk_after=1.0 + 0.37 * i)
        print(f"run {i + 1}: barge-in {_ms(b.latency_ms)} to silence received "
              f"({_ms(b.sender_ms)} to silence sent), interrupted event {b.interrupted} "
              f"after {_ms(b.event_ms)}; end of turn -> reply audio {_ms(b.reply_ms)}")
        if b.sender_ms is not None:
            sent.append(b.sender_ms)
        if b.latency_ms is not None:
            barge.append(b.latency_ms)
        if b.event_ms is not None:
            events.append(b.event_ms)
        if b.reply_ms is not None:
            replies.append(b.reply_ms)
    print(f"median lip-sync offset: {_median(offsets)} ms (target |offset| <= 20 ms)")
    print(f"median connected -> first greeting audio: {_median(firsts)} ms")
    print(f"median barge-in latency (speech onset sent -> avatar silent): {_median(barge)} ms "
          f"(target 200 ms); to silence sent: {_median(sent)} ms; -> interrupted event: "
          f"{_median(events)} ms")
    print(f"median end of customer turn -> first reply audio: {_median(replies)} ms")


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server; default: start one")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    if args.url:
        asyncio.run(main(args.url, args.runs, args.data))
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = spawn_server(Path(tmp), REPO, config_yaml=f"tts:\n  greeting: {GREETING}\n")
        try:
            asyncio.run(main(url, args.runs, args.data))
        finally:
            stop_server(proc)


if __name__ == "__main__":
    cli()
