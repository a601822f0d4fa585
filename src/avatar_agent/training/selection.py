"""Judging a change to training on validation speakers alone.

A training run's ``cv_report.json`` keeps, per fold, each member's validation figures
epoch by epoch (``folds[].val_history``). A change is scored by what early stopping
saw: per fold and member, the combined validation score (mean of 8-class UAR, arousal
balanced accuracy and anger AUC) averaged over the epochs around the best one, so one
lucky epoch does not decide; then the mean over all fold x member runs. Test speakers'
figures play no part, so the test figures stay an honest read of the chosen setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import mean
from typing import Any

AROUND_BEST = 2  # epochs each side of the best one that are averaged with it


def combined(epoch: Mapping[str, float]) -> float:
    """The score early stopping maximises (training/train.py)."""
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
