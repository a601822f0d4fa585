"""Score a trained affect model on any folder of labelled clips.

Clips are found recursively and labelled from their names (RAVDESS, CREMA-D, EmoDB,
MEAD) or a `labels.csv` (:mod:`avatar_agent.affect.labels`).

* ``--protocol call`` (the default) chains each speaker's clips into calls and
  streams them through the code a live call runs (:mod:`avatar_agent.training.calls`):
  time to escalation of calls that start angry, false alarms on calm speech, the level
  per emotion, per-clip figures with the causal state, and the calibration of the
  anger index. The top-level figures are the per-clip ones with the causal state.
* ``--protocol clip`` scores each clip alone, as the mean over its 2 s windows, with
  no reference of the caller (the model's first, speaker-independent answer).

Clips that cannot be read are listed in ``skipped`` with why. Same input, same report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatar_agent.affect.labels import discover, one_per_recording
from avatar_agent.affect.predictor import AffectPredictor
from avatar_agent.core.config import Config
from avatar_agent.training.call_metrics import summarize
from avatar_agent.training.calls import ALL, plan_calls, run_calls, segment_outputs
from avatar_agent.training.dataset import ClipFeatures, load_clips, windows_of
from avatar_agent.training.metrics import ClipResult, build_report
from avatar_agent.training.report_plot import write_report_png

PROTOCOLS = ("call", "clip")


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "avatar-agent" / "features"


class EvaluateError(Exception):
    """Nothing to evaluate; the message is one line for the user."""


def score_clips(
    predictor: AffectPredictor, clips: list[ClipFeatures]
) -> tuple[list[ClipResult], list[dict[str, str]]]:
    """Each clip alone, with no reference: the mean over its 2 s windows, 1 s apart."""
    results: list[ClipResult] = []
    skipped: list[dict[str, str]] = []
    for c in clips:
        wins = windows_of(c)
        if not wins:
            skipped.append({"file": str(c.path), "reason": "too little speech or face"})
            continue
        outs = predictor.predict(wins)
        n = len(outs)
        probs = [sum(o.probs[k] for o in outs) / n for k in range(len(outs[0].probs))]
        results.append(ClipResult.from_probs(
            str(c.path), c.label, probs, sum(o.arousal for o in outs) / n,
            sum(o.valence for o in outs) / n))
    return results, skipped


def score_calls(
    predictor: AffectPredictor,
    clips: list[ClipFeatures],
    cfg: Config,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> tuple[list[ClipResult], dict[str, Any]]:
    """Every speaker's calls; per-clip results with the causal state, and the `calls`
    section of the report."""
    results = run_calls(predictor.predict, plan_calls(clips, seed), cfg, progress)
    recs = [ClipResult.from_probs(str(c.path), c.label, p.tolist(), a, v)
            for c, p, a, v in segment_outputs(results, ALL)]
    return recs, summarize(results)


def evaluate(
    data: Path,
    model: Path,
    out: Path,
    *,
    device: str = "auto",
    cache: Path | None = None,
    workers: int = 2,
    protocol: str = "call",
    cfg: Config | None = None,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write ``out`` (report.json) and a plot next to it (``<stem>.png``); return the report."""
    if protocol not in PROTOCOLS:
        raise EvaluateError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if not data.is_dir():
        raise EvaluateError(f"{data}: not a folder")
    predictor = AffectPredictor.load(model, device)
    found, skipped = discover(data)
    found, copies = one_per_recording(found)
    skipped += copies
    if not found:
        raise EvaluateError(f"{data}: no labelled clip (known file names or a labels.csv)")
    if on_total is not None:
        on_total(len(found))
    feats = load_clips(found, cache, workers=workers, progress=progress)
    readable = []
    for c in feats:
        if c.error is not None:
            skipped.append({"file": str(c.path), "reason": c.error})
        else:
            readable.append(c)
    calls: dict[str, Any] | None = None
    if protocol == "call":
        results, calls = score_calls(predictor, readable, cfg or Config(), seed)
    else:
        results, unscored = score_clips(predictor, readable)
        skipped.extend(unscored)
    if not results:
        raise EvaluateError(f"{data}: none of the {len(found)} labelled clips could be scored")
    report = build_report(results, skipped)
    report["protocol"] = protocol
    if calls is not None:
        report["calls"] = calls
    report["model"] = {"path": str(model), **predictor.meta.get("summary", {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    write_report_png(report, out.with_suffix(".png"))
    return report
