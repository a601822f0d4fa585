"""Measure the TTS engine: voice load time, real-time factor and first-sentence latency.

Run with ``python scripts/bench_tts.py [--speed 1.0] [--runs 3]``.
RTF is synthesis time divided by audio duration: below 1 means faster than real time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from avatar_agent.speech.tts import PiperTTS

SENTENCES = [
    "Hello, how can I help you today?",
    "I'm sorry to hear that your order arrived damaged.",
    "Let me check the tracking number for you, it should only take a moment.",
    "Your replacement will be shipped within three business days, "
    "and you will receive a confirmation email with the new tracking number shortly after.",
    "Thanks for waiting!",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--output-rate", type=int, default=48000)
    parser.add_argument("--runs", type=int, default=3, help="timed passes over the sentences")
    args = parser.parse_args()

    start = time.perf_counter()
    engine = PiperTTS(speed=args.speed, output_rate=args.output_rate)
    load_s = time.perf_counter() - start
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cpus: {os.cpu_count()}  load average: {load_avg}")
    print(f"voice load (patch + session): {load_s:.2f} s")

    paragraph = " ".join(SENTENCES)
    start = time.perf_counter()
    next(iter(engine.sentences(paragraph)))
    cold_first_s = time.perf_counter() - start

    per_sentence: dict[str, list[float]] = {s: [] for s in SENTENCES}
    durations: dict[str, float] = {}
    first_latencies: list[float] = []
    for _ in range(args.runs):
        for sentence in SENTENCES:
            start = time.perf_counter()
            (utterance,) = engine.synthesize(sentence)
            per_sentence[sentence].append(time.perf_counter() - start)
            durations[sentence] = utterance.duration
        start = time.perf_counter()
        next(iter(engine.sentences(paragraph)))
        first_latencies.append(time.perf_counter() - start)

    print(f"\n{'audio s':>8} {'synth s':>8} {'RTF':>6}  sentence")
    total_audio = total_synth = 0.0
    for sentence in SENTENCES:
        synth_s = statistics.median(per_sentence[sentence])
        total_audio += durations[sentence]
        total_synth += synth_s
        label = sentence if len(sentence) <= 50 else sentence[:47] + "..."
        rtf = synth_s / durations[sentence]
        print(f"{durations[sentence]:8.2f} {synth_s:8.3f} {rtf:6.3f}  {label}")
    summary = f"{total_audio:8.2f} {total_synth:8.3f} {total_synth / total_audio:6.3f}"
    print(f"{summary}  (all, median of {args.runs})")
    print(f"\nfirst-sentence latency of a {len(SENTENCES)}-sentence paragraph:")
    print(f"  cold (first call after load): {cold_first_s * 1000:.0f} ms")
    print(f"  warm (median of {args.runs}): {statistics.median(first_latencies) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
