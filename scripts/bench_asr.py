"""Speech recognition: word error rate on real speech with known text, and its cost.

Run with ``python scripts/bench_asr.py [--data ../shared/data] [--compute-type int8]``.

- RAVDESS (``speech_emotion/ravdess_full``): "Kids are talking by the door" and "Dogs
  are sitting by the door", every actor and every emotion (``--per-cell`` clips per
  actor x emotion x statement x intensity).
- GRID (``talking_face/grid``): each file name spells its sentence ("bbaf2n" = "bin
  blue at f two now").
- CASIA (``speech_emotion/casia``, Mandarin): no transcripts ship with it, but every
  speaker reads the same 50 texts, so the character error rate between two speakers'
  transcripts of the same text says how consistently Mandarin is heard (an upper
  bound on neither's error, not a true CER).

Reports WER (word-level edit distance over reference words, after lower-casing,
dropping punctuation and spelling out digits), the seconds of computing per second
of speech (real-time factor: 1 / RTF calls talking at once saturate one core), and
the median time per turn.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from avatar_agent.perception.audio import load_audio
from avatar_agent.speech.asr import MIN_CONTEXT_S, Transcriber

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
GRID_WORDS = [
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    None,  # a letter
    {"z": "zero", **{str(d): w for d, w in enumerate(DIGITS)}},
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
]


def normalise(text: str) -> list[str]:
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text.lower())
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text)
    return re.sub(r"[^\w\s']", " ", text).split()


def edits(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two token lists."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def grid_text(name: str) -> str:
    return " ".join(w[c] if w is not None else c for w, c in zip(GRID_WORDS, name, strict=True))


def ravdess_clips(root: Path, per_cell: int) -> list[tuple[Path, str]]:
    cells: dict[tuple[str, ...], list[Path]] = defaultdict(list)
    for path in sorted(root.glob("Actor_*/*.flac")):
        parts = path.stem.split("-")  # modality, channel, emotion, intensity, statement, rep, actor
        cells[(parts[6], parts[2], parts[3], parts[4])].append(path)
    return [(p, STATEMENTS[key[3]]) for key, paths in sorted(cells.items())
            for p in paths[:per_cell]]


def _spread(clips: list[tuple[Path, str]], limit: int) -> list[tuple[Path, str]]:
    if not limit or limit >= len(clips):
        return clips
    return clips[:: len(clips) // limit][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--compute-type", default="int8", help="int8 or float32")
    parser.add_argument("--full-context", action="store_true",
                        help="always encode 30 s, as Whisper was trained (slower)")
    parser.add_argument("--min-context", type=float, default=MIN_CONTEXT_S,
                        help="seconds the encoder reads at least (asr.min_context_s)")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--per-cell", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0,
                        help="at most this many RAVDESS clips, spread over the set (0: all)")
    parser.add_argument("--casia-texts", type=int, default=10, help="0 skips Mandarin")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    asr = Transcriber.load(compute_type=args.compute_type, beam_size=args.beam_size,
                           min_context_s=None if args.full_context else args.min_context)
    print(f"cpus: {os.cpu_count()}  load average: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"model load: {time.perf_counter() - t0:.2f} s  ({args.compute_type}, "
          f"{'30 s' if args.full_context else f'turn-sized (>= {args.min_context:g} s)'} "
          f"context, beam {args.beam_size})")
    asr.transcribe(load_audio(next((args.data / "talking_face/grid").glob("*.mpg")))[0])

    speech_s = compute_s = 0.0
    per_turn: list[float] = []
    for corpus, clips in (
        ("RAVDESS", _spread(ravdess_clips(args.data / "speech_emotion/ravdess_full",
                                          args.per_cell), args.limit)),
        ("GRID", [(p, grid_text(p.stem)) for p in
                  sorted((args.data / "talking_face/grid").glob("*.mpg"))]),
    ):
        errors = words = 0
        for path, ref in clips:
            audio, _ = load_audio(path)
            out = asr.transcribe(audio)
            hyp, want = normalise(out.text), normalise(ref)
            e = edits(want, hyp)
            errors, words = errors + e, words + len(want)
            speech_s, compute_s = speech_s + out.audio_s, compute_s + out.compute_s
            per_turn.append(out.compute_s)
            if e and args.show_errors:
                print(f"  {path.name}: {out.text!r}", file=sys.stderr)
        print(f"{corpus}: WER {100 * errors / words:.1f} % over {len(clips)} clips "
              f"({words} words)")

    if args.casia_texts:
        zh = asr.with_language("zh")
        root = args.data / "speech_emotion/casia"
        with (root / "labels.csv").open() as f:
            rows = [r for r in csv.DictReader(f) if r["emotion"] == "neutral"]
        by_text: dict[str, dict[str, str]] = defaultdict(dict)
        for r in rows:
            by_text[Path(r["file"]).stem.rsplit("_", 1)[1]][r["speaker"]] = r["file"]
        errors = chars = 0
        for text_id in sorted(by_text)[: args.casia_texts]:
            heard = []
            for file in sorted(by_text[text_id].values())[:2]:
                out = zh.transcribe(load_audio(root / file)[0])
                heard.append(re.sub(r"[^\w]", "", out.text))
                speech_s, compute_s = speech_s + out.audio_s, compute_s + out.compute_s
                per_turn.append(out.compute_s)
            errors, chars = errors + edits(list(heard[0]), list(heard[1])), chars + len(heard[0])
            print(f"  CASIA text {text_id}: {' | '.join(heard)}")
        n_texts = min(args.casia_texts, len(by_text))
        print(f"CASIA (Mandarin): cross-speaker character disagreement "
              f"{100 * errors / max(1, chars):.1f} % over {n_texts} texts")

    rtf = compute_s / speech_s
    print(f"ASR cost: {rtf:.3f} s of one core per second of speech; one core keeps up with "
          f"{1 / rtf:.1f} customers talking at once")
    print(f"time per turn: median {statistics.median(per_turn):.3f} s, "
          f"max {max(per_turn):.3f} s over {len(per_turn)} turns")


if __name__ == "__main__":
    main()
