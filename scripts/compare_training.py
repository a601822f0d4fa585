"""Compare two training runs on their validation speakers (training/selection.py).

    .venv/bin/python scripts/compare_training.py BASE/cv_report.json CANDIDATE/cv_report.json
        [--margin 0.005]

Prints each run's smoothed validation score and its validation calls' escalation
figures, and whether the candidate clears the baseline by the margin (to be fixed
before the candidate is trained) while letting no fewer angry starts escalate.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from avatar_agent.training.selection import (
    paired_difference,
    validation_calls,
    validation_score,
    verdict,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--margin", type=float, default=0.005)
    args = ap.parse_args()
    reports = {"base": json.loads(args.base.read_text()),
               "candidate": json.loads(args.candidate.read_text())}
    for name, report in reports.items():
        score, values = validation_score(report)
        sd = statistics.pstdev(values)
        calls = validation_calls(report)
        said = ("no validation call figures" if calls is None else
                f"{calls['policy']}: angry starts <= 10 s {calls['share_within_10s']}, "
                f"calm escalations {calls['calm_escalations']}")
        print(f"{name:9s} {score:.4f}  (n={len(values)}, sd {sd:.4f})  {said}")
    diff, se, gained, n = paired_difference(reports["base"], reports["candidate"])
    print(f"paired    {diff:+.4f}  (standard error {se:.4f}; {gained} of {n} runs gained): "
          "the noise the margin stands against")
    adopt, why = verdict(reports["base"], reports["candidate"], args.margin)
    print(("adopt: " if adopt else "keep the base: ") + why)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
