"""Score a trained affect model on any folder of labelled clips.

Clips are found recursively and labelled from their names (RAVDESS, CREMA-D, EmoDB,
MEAD). Each speaker's baseline comes from all of their clips in the folder, as a
call's first minute would give it; each clip is scored as the mean over its 2 s
windows, 1 s apart. Clips that cannot be read are listed in ``skipped`` with why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avatar_agent.affect.dataset import ClipFeatures, load_clips, speaker_bases, windows_of
from avatar_agent.affect.labels import discover
from avatar_agent.affect.metrics import ClipResult, build_report
from avatar_agent.affect.model import AffectPredictor
from avatar_agent.affect.report_plot import write_report_png


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "avatar-agent" / "features"


class EvaluateError(Exception):
    """Nothing to evaluate; the message is one line for the user."""


def score_clips(
    predictor: AffectPredictor, clips: list[ClipFeatures]
) -> tuple[list[ClipResult], list[dict[str, str]]]:
    bases = speaker_bases(clips)
    results: list[ClipResult] = []
    skipped: list[dict[str, str]] = []
    for c in clips:
        wins = [w for w in windows_of(c, bases[c.label.speaker]) if w.has_voice or w.has_face]
        if not wins:
            skipped.append({"file": str(c.path), "reason": "too little speech or face to "
                            "set the speaker's baseline"})
            continue
        outs = predictor.predict(wins)
        results.append(ClipResult.from_probs(
            str(c.path), c.label, np.mean([o.probs for o in outs], axis=0).tolist(),
            float(np.mean([o.arousal for o in outs])), float(np.mean([o.valence for o in outs])),
        ))
    return results, skipped


def evaluate(
    data: Path,
    model: Path,
    out: Path,
    *,
    device: str = "auto",
    cache: Path | None = None,
    workers: int = 2,
    progress: Callable[[int], object] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write ``out`` (report.json) and a plot next to it (``<stem>.png``); return the report."""
    if not data.is_dir():
        raise EvaluateError(f"{data}: not a folder")
    predictor = AffectPredictor.load(model, device)
    found, skipped = discover(data)
    if not found:
        raise EvaluateError(f"{data}: no clip with a RAVDESS, CREMA-D, EmoDB or MEAD name")
    if on_total is not None:
        on_total(len(found))
    feats = load_clips(found, cache, workers=workers, progress=progress)
    readable = []
    for c in feats:
        if c.error is not None:
            skipped.append({"file": str(c.path), "reason": c.error})
        else:
            readable.append(c)
    results, unscored = score_clips(predictor, readable)
    skipped.extend(unscored)
    if not results:
        raise EvaluateError(f"{data}: none of the {len(found)} labelled clips could be scored")
    report = build_report(results, skipped)
    report["model"] = {"path": str(model), **predictor.meta.get("summary", {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    write_report_png(report, out.with_suffix(".png"))
    return report
