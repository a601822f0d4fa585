"""Scores of an affect model on labelled clips: UAR, arousal balanced accuracy, anger AUC.

Everything here is pure so the same numbers come out of a benchmark script, a test
and a notebook; the report is plain JSON-ready data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avatar_agent.affect.labels import EMOTIONS, ClipLabel


@dataclass(frozen=True)
class ClipResult:
    """The model's output for one labelled clip."""

    file: str
    label: ClipLabel
    probs: dict[str, float]
    arousal: float  # 0..1, "high" from 0.5 up
    valence: float  # -1..1
    anger_index: float  # 0..100

    def __post_init__(self) -> None:
        if set(self.probs) != set(EMOTIONS):
            raise ValueError(f"probs must have the keys {EMOTIONS}, got {sorted(self.probs)}")

    @classmethod
    def from_probs(
        cls, file: str, label: ClipLabel, probs: Sequence[float], arousal: float,
        valence: float,
    ) -> ClipResult:
        """A result from probabilities in EMOTIONS order; anger index = 100 x P(angry)."""
        return cls(
            file=file, label=label,
            probs={e: float(p) for e, p in zip(EMOTIONS, probs, strict=True)},
            arousal=float(arousal), valence=float(valence),
            anger_index=100.0 * float(probs[EMOTIONS.index("angry")]),
        )

    @property
    def predicted(self) -> str:
        # max() keeps the first of equal values, so ties go to the earlier class in EMOTIONS.
        return max(EMOTIONS, key=lambda e: self.probs[e])


def confusion(true: Sequence[str], pred: Sequence[str], classes: Sequence[str]) -> list[list[int]]:
    """Counts with rows = true class and columns = predicted class, both in `classes` order."""
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} true labels but {len(pred)} predictions")
    index = {c: i for i, c in enumerate(classes)}
    unknown = (set(true) | set(pred)) - set(index)
    if unknown:
        # Dropping them silently would inflate recall; the caller must choose the classes.
        raise ValueError(f"labels not in classes: {sorted(unknown)}")
    matrix = [[0] * len(classes) for _ in classes]
    for t, p in zip(true, pred, strict=True):
        matrix[index[t]][index[p]] += 1
    return matrix


def recall_per_class(
    true: Sequence[str], pred: Sequence[str], classes: Sequence[str]
) -> dict[str, float | None]:
    """Recall of each class; None for a class that never occurs in `true`."""
    matrix = confusion(true, pred, classes)
    out: dict[str, float | None] = {}
    for i, c in enumerate(classes):
        n = sum(matrix[i])
        out[c] = matrix[i][i] / n if n else None
    return out


def uar(true: Sequence[str], pred: Sequence[str], classes: Sequence[str]) -> float:
    """Unweighted average recall over the classes of `classes` that occur in `true`."""
    recalls = [r for r in recall_per_class(true, pred, classes).values() if r is not None]
    if not recalls:
        raise ValueError("no true labels: UAR is undefined")
    return sum(recalls) / len(recalls)


def balanced_accuracy(true: Sequence[bool], pred: Sequence[bool]) -> float | None:
    """Mean of the recalls of True and False, over those that occur in `true`.

    This is UAR with two classes; None when `true` is empty.
    """
    if not true:
        return None
    return uar([str(bool(t)) for t in true], [str(bool(p)) for p in pred], ("True", "False"))


_Floats = np.ndarray[Any, np.dtype[np.float64]]


def _midranks(values: _Floats) -> _Floats:
    # Tied values share the mean of the 1-based ranks they span.
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    mids = ends - (counts.astype(np.float64) - 1.0) / 2.0
    return np.asarray(mids[inverse], dtype=np.float64)


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve from the Mann-Whitney U statistic, ties counting one half.

    None when either class is absent.
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(_midranks(s)[y].sum())
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _clean(x: float | None) -> float | None:
    # NaN is not valid JSON, and numpy scalars are not serialisable at all.
    if x is None or math.isnan(x):
        return None
    return float(x)


def _scores(records: Sequence[ClipResult]) -> dict[str, Any]:
    """UAR, arousal balanced accuracy, anger AUC and accuracy of a set of clips."""
    known = [r for r in records if r.label.emotion is not None]
    true = [r.label.emotion for r in known if r.label.emotion is not None]
    pred = [r.predicted for r in known]
    present = [c for c in EMOTIONS if c in set(true)]
    with_arousal = [r for r in records if r.label.arousal is not None]
    return {
        "n_clips": len(records),
        "uar": _clean(uar(true, pred, EMOTIONS)) if known else None,
        "uar_classes": present,
        "accuracy": _clean(sum(t == p for t, p in zip(true, pred, strict=True)) / len(known))
        if known
        else None,
        "arousal_balanced_accuracy": _clean(
            balanced_accuracy(
                [r.label.arousal == "high" for r in with_arousal],
                [r.arousal >= 0.5 for r in with_arousal],
            )
        ),
        "anger_auc": _clean(
            roc_auc([t == "angry" for t in true], [float(r.anger_index) for r in known])
        ),
    }


def build_report(records: Sequence[ClipResult], skipped: list[dict[str, str]]) -> dict[str, Any]:
    """JSON-ready evaluation of `records`.

    Clips whose label has no counterpart among EMOTIONS (boredom, contempt) count only
    where they have a label: arousal for boredom, nothing but `per_clip` for contempt.
    """
    overall = _scores(records)
    known = [r for r in records if r.label.emotion is not None]
    true = [r.label.emotion for r in known if r.label.emotion is not None]
    pred = [r.predicted for r in known]
    recalls = recall_per_class(true, pred, EMOTIONS)

    speakers = sorted({r.label.speaker for r in records})
    per_speaker: dict[str, dict[str, Any]] = {}
    for speaker in speakers:
        s = _scores([r for r in records if r.label.speaker == speaker])
        per_speaker[speaker] = {
            k: s[k]
            for k in ("n_clips", "uar", "arousal_balanced_accuracy", "anger_auc", "accuracy")
        }

    return {
        "n_clips": len(records),
        "n_emotion_clips": len(known),
        "n_arousal_clips": sum(r.label.arousal is not None for r in records),
        "n_speakers": len(speakers),
        # Confusion axes and probability keys; UAR averages over `uar_classes` only.
        "classes": list(EMOTIONS),
        "uar": overall["uar"],
        "uar_classes": overall["uar_classes"],
        "uar_is_8_class": len(overall["uar_classes"]) == len(EMOTIONS),
        "accuracy": overall["accuracy"],
        "arousal_balanced_accuracy": overall["arousal_balanced_accuracy"],
        "anger_auc": overall["anger_auc"],
        "confusion": {"classes": list(EMOTIONS), "matrix": confusion(true, pred, EMOTIONS)},
        "per_class_recall": {c: _clean(v) for c, v in recalls.items()},
        "per_speaker": per_speaker,
        "per_clip": [_clip_row(r) for r in records],
        "skipped": [dict(s) for s in skipped],
    }


def _clip_row(r: ClipResult) -> dict[str, Any]:
    return {
        "file": r.file,
        "corpus": r.label.corpus,
        "speaker": r.label.speaker,
        "true": r.label.emotion,
        "raw_label": r.label.raw_label,
        "true_arousal": r.label.arousal,
        "predicted": r.predicted,
        "probs": {e: _clean(float(r.probs[e])) for e in EMOTIONS},
        "arousal": _clean(float(r.arousal)),
        "valence": _clean(float(r.valence)),
        "anger_index": _clean(float(r.anger_index)),
    }


def headline(report: Mapping[str, Any]) -> str:
    """One line with the figures that matter, for logs and plot titles."""

    def fmt(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    k = len(report["uar_classes"])
    return (
        f"n={report['n_clips']} clips | UAR {fmt(report['uar'])} ({k}-class) | "
        f"arousal BA {fmt(report['arousal_balanced_accuracy'])} | "
        f"anger AUC {fmt(report['anger_auc'])}"
    )
