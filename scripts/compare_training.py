"""Compare two training runs on their validation speakers (training/selection.py).

    .venv/bin/python scripts/compare_training.py BASE/cv_report.json CANDIDATE/cv_report.json
        [--margin 0.005]

Prints each run's smoothed validation score and whether the candidate clears the
baseline by the margin, which is to be fixed before the candidate is trained.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from avatar_agent.training.selection import validation_score


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--margin", type=float, default=0.005)
    args = ap.parse_args()
    scores = {}
    for name, path in (("base", args.base), ("candidate", args.candidate)):
        score, values = validation_score(json.loads(path.read_text()))
        scores[name] = score
        sd = statistics.pstdev(values)
        print(f"{name:9s} {score:.4f}  (n={len(values)}, sd {sd:.4f})  {path}")
    gain = scores["candidate"] - scores["base"]
    verdict = "adopt" if gain >= args.margin else "keep the base"
    print(f"gain {gain:+.4f} against a margin of {args.margin}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
