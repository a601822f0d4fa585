"""Judging a change to training on validation speakers alone.

A training run's ``cv_report.json`` keeps, per fold, each member's validation figures
epoch by epoch (``folds[].val_history``). A change is scored by what early stopping
saw: per fold and member, the combined validation score (mean of 8-class UAR, arousal
balanced accuracy and anger AUC) averaged over the epochs around the best one, so one
lucky epoch does not decide; then the mean over all fold x member runs. Test speakers'
figures play no part, so the test figures stay an honest read of the chosen setting.

The clip figures alone can mislead: a model that ranks clips better may still raise
calm callers' index, so that the escalation policy chosen on the validation calls
must wait for a higher index and lets fewer angry starts through. A change must
therefore also keep the share of validation angry starts escalated within 10 s under
that policy (``calls.escalation_policy.shipped_on_validation``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import mean, stdev
from typing import Any

AROUND_BEST = 2  # epochs each side of the best one that are averaged with it


def combined(epoch: Mapping[str, float]) -> float:
    """The score early stopping maximises (training/train.py uses this one)."""
    return (epoch["uar"] + epoch["arousal_ba"] + epoch["anger_auc"]) / 3


def smoothed_best(history: Sequence[Mapping[str, float]], around: int = AROUND_BEST) -> float:
    """The combined score averaged over the epochs around the first best one."""
    if not history:
        raise ValueError("a member with no validation history")
    scores = [combined(e) for e in history]
    best = scores.index(max(scores))
    return mean(scores[max(0, best - around): best + around + 1])


def validation_score(cv_report: Mapping[str, Any]) -> tuple[float, list[float]]:
    """(mean, one value per fold x member) of a run's ``cv_report.json``."""
    folds = cv_report.get("folds")
    if not folds or any("val_history" not in f for f in folds):
        raise ValueError("this cv_report.json keeps no validation curves "
                         "(written by an older `avatar-agent train`)")
    values = [smoothed_best(h) for f in folds for h in f["val_history"]]
    return mean(values), values


def paired_difference(base: Mapping[str, Any],
                      candidate: Mapping[str, Any]) -> tuple[float, float, int, int]:
    """How far apart two runs are, run by run: (mean of candidate - base over the fold x
    member runs, its standard error, how many runs gained, how many were compared).

    Both runs deal the same speakers into the same folds and seed their members alike,
    so the i-th fold x member run of each saw the same speakers: the spread of their
    differences is the run-to-run noise a margin should be set against.
    """
    _, b = validation_score(base)
    _, c = validation_score(candidate)
    if len(b) != len(c):
        raise ValueError(f"the runs have {len(b)} and {len(c)} fold x member runs: "
                         "train both with the same --members")
    diffs = [y - x for x, y in zip(b, c, strict=True)]
    se = stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    return mean(diffs), se, sum(d > 0 for d in diffs), len(diffs)


def validation_calls(cv_report: Mapping[str, Any]) -> dict[str, Any] | None:
    """Angry starts and calm calls on the validation speakers' calls, under the policy
    chosen on them; None for a report written before these were recorded."""
    policy = cv_report.get("calls", {}).get("escalation_policy", {})
    figures = policy.get("shipped_on_validation")
    if figures is None:
        return None
    return {"policy": policy.get("shipped", {}).get("text"), **figures}


def verdict(base: Mapping[str, Any], candidate: Mapping[str, Any],
            margin: float) -> tuple[bool, str]:
    """Whether the candidate run is adopted over the base, and why."""
    gain = validation_score(candidate)[0] - validation_score(base)[0]
    if gain < margin:
        return False, f"validation score {gain:+.4f}, short of the margin {margin}"
    old, new = validation_calls(base), validation_calls(candidate)
    if old is None or new is None:
        return False, "a report without validation call figures: train both again"
    share = [c["share_within_10s"] or 0.0 for c in (old, new)]
    if share[1] < share[0]:
        return False, (f"validation score {gain:+.4f}, but validation angry starts "
                       f"escalated within 10 s {share[0]:.0%} -> {share[1]:.0%}")
    if new["calm_escalations"] > old["calm_escalations"]:
        return False, (f"validation score {gain:+.4f}, but calm validation calls escalated "
                       f"{old['calm_escalations']} -> {new['calm_escalations']} times")
    return True, f"validation score {gain:+.4f} >= {margin}, call figures held"
