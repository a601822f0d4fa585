"""Figures of the call protocol (:mod:`avatar_agent.training.calls`): what an operator
would have seen, per corpus and per kind of input.

* time to the first escalation of calls that start angry, per speaker;
* escalations per hour of calm-only speech, and calm-only calls that reached furious;
* the level reached while each emotion played;
* per clip with the causal state: UAR, arousal balanced accuracy, anger AUC;
* calibration of the anger index: expected calibration error and a reliability table
  over the windows of the calls (of windows with an index near 70, how many are angry).

Pure: results in, JSON-ready data out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from avatar_agent.core.levels import LEVELS
from avatar_agent.training.calls import (
    ALL,
    ANGRY_FIRST,
    CALM_ONLY,
    ESCALATE_WITHIN_S,
    CallResult,
    segment_outputs,
)
from avatar_agent.training.metrics import ClipResult, build_report

N_BINS = 10
CURVES = 4  # calls whose curves the report keeps for its plot


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def calibration(scores: Sequence[float], angry: Sequence[bool]) -> dict[str, Any]:
    """Expected calibration error of anger indices (0-100) read as P(angry), and the
    reliability table: per tenth of the index, its mean and the share really angry."""
    p = np.asarray(scores, np.float64) / 100.0
    y = np.asarray(angry, np.float64)
    bins: list[dict[str, Any]] = []
    ece = 0.0
    for k in range(N_BINS):
        lo, hi = k / N_BINS, (k + 1) / N_BINS
        sel = (p >= lo) & ((p < hi) if k < N_BINS - 1 else (p <= hi))
        n = int(sel.sum())
        if n:
            conf, acc = float(p[sel].mean()), float(y[sel].mean())
            ece += n / len(p) * abs(conf - acc)
            bins.append({"lo": lo, "hi": hi, "n": n, "mean_index": round(100 * conf, 1),
                         "share_angry": round(acc, 3)})
        else:
            bins.append({"lo": lo, "hi": hi, "n": 0, "mean_index": None, "share_angry": None})
    return {"ece": _r(ece) if len(p) else None, "n_windows": int(len(p)), "bins": bins}


def _escalation(results: Sequence[CallResult]) -> dict[str, Any]:
    """Calls that start angry: per speaker, seconds to the first escalation."""
    per_speaker: dict[str, float | None] = {}
    for r in results:
        if r.plan.kind == ANGRY_FIRST:
            per_speaker[r.plan.speaker] = r.first_escalation
    times = [t for t in per_speaker.values() if t is not None]
    within = [t is not None and t <= ESCALATE_WITHIN_S for t in per_speaker.values()]
    # a speaker who never escalated counts as infinitely slow in the median
    ordered = sorted(t if t is not None else np.inf for t in per_speaker.values())
    median = float(np.median(ordered)) if ordered else None
    return {
        "n_speakers": len(per_speaker),
        "share_within_10s": _r(float(np.mean(within))) if within else None,
        "median_s": _r(median, 2),
        "never": sum(t is None for t in per_speaker.values()),
        "mean_s_when_escalated": _r(float(np.mean(times)), 2) if times else None,
        "per_speaker": {s: _r(t, 2) for s, t in sorted(per_speaker.items())},
    }


def _calm(results: Sequence[CallResult]) -> dict[str, Any]:
    calm = [r for r in results if r.plan.kind == CALM_ONLY]
    hours = sum(r.plan.duration for r in calm) / 3600.0
    escalations = sum(len(r.escalations) for r in calm)
    furious = [r.plan.speaker for r in calm if "furious" in r.levels]
    return {
        "n_calls": len(calm),
        "hours": _r(hours),
        "escalations": escalations,
        "escalations_per_hour": _r(escalations / hours, 2) if hours else None,
        "calls_reaching_furious": len(furious),
        "speakers_reaching_furious": sorted(set(furious)),
        "calls_reaching_dissatisfied": sum("dissatisfied" in r.levels for r in calm),
        "max_anger_index": _r(max((max(r.anger, default=0.0) for r in calm), default=0.0), 1),
    }


def _levels(results: Sequence[CallResult]) -> dict[str, dict[str, float]]:
    """Per emotion: the share of clips during which each level was the highest reached."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LEVELS, 0))
    for r in results:
        if r.plan.kind != ALL:
            continue
        for i, seg in enumerate(r.plan.segments):
            emotion = seg.clip.label.emotion or seg.clip.label.raw_label
            counts[emotion][r.max_level(i)] += 1
    return {e: {lv: round(n / max(1, sum(c.values())), 3) for lv, n in c.items()}
            | {"n": sum(c.values())} for e, c in sorted(counts.items())}


def _clips(results: Sequence[CallResult]) -> tuple[dict[str, Any], list[ClipResult]]:
    outs = segment_outputs(results, ALL)
    recs = [ClipResult.from_probs(str(c.path), c.label, p.tolist(), a, v)
            for c, p, a, v in outs]
    report = build_report(recs, []) if recs else {}
    keys = ("n_clips", "n_speakers", "uar", "uar_classes", "arousal_balanced_accuracy",
            "anger_auc", "per_class_recall")
    return {k: report.get(k) for k in keys}, recs


def tick_scores(results: Sequence[CallResult]) -> tuple[list[float], list[bool]]:
    """Each window's anger index in the calls that play all of a speaker's clips, and
    whether the clip then playing was angry (windows between clips left out)."""
    scores, angry = [], []
    for r in results:
        if r.plan.kind != ALL:
            continue
        for seg_i, raw in zip(r.segment_of_tick, r.raw_anger, strict=True):
            label = r.plan.segments[seg_i].clip.label.emotion if seg_i >= 0 else None
            if label is not None:
                scores.append(raw)
                angry.append(label == "angry")
    return scores, angry


def _tick_calibration(results: Sequence[CallResult]) -> dict[str, Any]:
    return calibration(*tick_scores(results))


def _section(results: Sequence[CallResult]) -> dict[str, Any]:
    clips, _ = _clips(results)
    return {
        "n_calls": len(results),
        "angry_first": _escalation(results),
        "calm_only": _calm(results),
        "level_per_emotion": _levels(results),
        "per_clip_causal": clips,
        "calibration": _tick_calibration(results),
    }


def _curves(results: Sequence[CallResult]) -> list[dict[str, Any]]:
    """A few calls' anger curves for the plot: the first speaker's calls of each kind."""
    chosen: list[CallResult] = []
    for kind in (ANGRY_FIRST, "neutral_first", CALM_ONLY):
        for r in results:
            if r.plan.kind == kind and r.plan.modality != "face" and r.times:
                chosen.append(r)
                break
    face = [r for r in results if r.plan.modality == "face" and r.plan.kind == CALM_ONLY]
    chosen.extend(face[:1])
    return [{
        "speaker": r.plan.speaker, "kind": r.plan.kind, "modality": r.plan.modality,
        "t": [round(t, 2) for t in r.times], "anger_index": [round(a, 1) for a in r.anger],
        "level": r.levels, "escalations": [round(t, 2) for t in r.escalations],
        "segments": [{"start": round(s.start, 2), "end": round(s.end, 2),
                      "emotion": s.clip.label.emotion} for s in r.plan.segments],
    } for r in chosen[:CURVES]]


def summarize(results: Sequence[CallResult]) -> dict[str, Any]:
    """The report's `calls` section: overall, per modality, per corpus and modality."""
    by_modality: dict[str, list[CallResult]] = defaultdict(list)
    by_corpus: dict[str, list[CallResult]] = defaultdict(list)
    for r in results:
        by_modality[r.plan.modality].append(r)
        corpus = r.plan.speaker.split(":", 1)[0]
        by_corpus[f"{corpus}/{r.plan.modality}"].append(r)
    return {
        "overall": _section(results),
        "by_modality": {m: _section(rs) for m, rs in sorted(by_modality.items())},
        "by_corpus": {k: _section(rs) for k, rs in sorted(by_corpus.items())},
        "curves": _curves(results),
    }


def call_headline(section: dict[str, Any]) -> str:
    a, c, k = section["angry_first"], section["calm_only"], section["per_clip_causal"]

    def f(x: Any, pct: bool = False) -> str:
        return "n/a" if x is None else (f"{100 * x:.0f}%" if pct else f"{x:.3f}")

    return (f"angry start: {f(a['share_within_10s'], True)} escalate <=10 s, median "
            f"{a['median_s']} s | calm: {c['escalations']} escalations in {c['hours']} h, "
            f"{c['calls_reaching_furious']} furious | per clip UAR {f(k['uar'])}, "
            f"arousal BA {f(k['arousal_balanced_accuracy'])}, anger AUC {f(k['anger_auc'])}"
            f" | ECE {f(section['calibration']['ece'])}")
