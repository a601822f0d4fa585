"""Compare escalation rules on the call traces `avatar-agent train --save-calls` keeps.

Nested, as training does it: each fold's setting is chosen on that fold's validation
speakers' calls only (`training/policy.py`), then scored on its test speakers' calls.
Run with the hold rule alone (the earlier choice) and with both rules competing, so the
gain of the evidence rule is measured on calls no choice looked at.

    python scripts/study_escalation.py /tmp/run/calls.pkl
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avatar_agent.core.config import EscalationConfig
from avatar_agent.training.call_metrics import summarize
from avatar_agent.training.calls import ANGRY_FIRST, CALM_ONLY, CallResult
from avatar_agent.training.policy import candidates, choose, describe, with_policy


def _before_anger(results: Sequence[CallResult]) -> tuple[int, float]:
    """Escalations before the first angry clip of calls that do not start angry (any
    other emotion plays there: happy, fearful, sad, ...), and the hours that covers."""
    n, seconds = 0, 0.0
    for r in results:
        if r.plan.kind in (ANGRY_FIRST, CALM_ONLY):
            continue
        angry = [s.start for s in r.plan.segments if s.clip.label.emotion == "angry"]
        until = min(angry, default=r.plan.duration)
        n += sum(t < until for t in r.escalations)
        seconds += until
    return n, seconds / 3600.0


def _line(name: str, results: list[CallResult]) -> str:
    o: dict[str, Any] = summarize(results)["overall"]
    a, c = o["angry_first"], o["calm_only"]
    n, h = _before_anger(results)
    return (f"{name:<28} angry start <=10 s {a['share_within_10s']:.3f} of {a['n_speakers']}"
            f", median {a['median_s']} s, never {a['never']}; calm-only: "
            f"{c['escalations']} escalations in {c['hours']} h, furious calls "
            f"{c['calls_reaching_furious']}; before any anger: {n} in {h:.2f} h")


def main(path: Path) -> None:
    folds: list[dict[str, Any]] = pickle.loads(path.read_bytes())
    base = EscalationConfig()
    print(f"{len(candidates(base))} candidate settings")
    for name, rules in (("hold rule only", ("hold",)), ("hold or evidence",
                                                        ("hold", "evidence"))):
        tested: list[CallResult] = []
        for f in folds:
            cfg = choose(f["val"], base, rules)
            print(f"  fold {f['fold'] + 1}: {describe(cfg)}")
            tested += with_policy(f["test"], cfg)
        print(_line(name + ", per fold", tested))
        shipped = choose([r for f in folds for r in f["val"]], base, rules)
        every = with_policy([r for f in folds for r in f["test"]], shipped)
        print(_line(name + ", one setting", every) + f"  [{describe(shipped)}]")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
