"""Cross-validation by speaker, and the shipped model's fit.

Cross-validation trains one ensemble (:mod:`avatar_agent.training.members`) per fold
on three folds, stops early and calibrates on the fourth and predicts the fifth, clip
by clip and as calls (:mod:`avatar_agent.training.calls`), so every figure comes from
a model that never heard or saw that speaker: those are the model card's figures. The
shipped model trains on four folds and stops early on the fifth.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avatar_agent.affect.model import AffectOutput, AffectWindow
from avatar_agent.affect.predictor import AffectEnsemble
from avatar_agent.core.config import Config, EscalationConfig
from avatar_agent.training.calibration import fit_anger_scaling
from avatar_agent.training.call_metrics import tick_scores
from avatar_agent.training.calls import CallResult, plan_calls, run_calls
from avatar_agent.training.dataset import ClipFeatures, calm_references
from avatar_agent.training.members import fit_members
from avatar_agent.training.policy import as_dict, choose, with_policy
from avatar_agent.training.train import (
    N_FOLDS,
    Prediction,
    TrainOptions,
    assign_folds,
    clip_scores,
    predict_clips,
    predict_windows,
)


def _prefixed(
    progress: Callable[[str], None] | None, prefix: str
) -> Callable[[str], None] | None:
    if progress is None:
        return None
    return lambda m: progress(prefix + m)


@dataclass
class FoldOutput:
    """What one cross-validation fold gives: per-clip predictions without a reference
    and with a calm one, the calls of its test speakers (escalations as the policy
    chosen on its validation speakers raises them) and of its validation speakers."""

    clips: list[ClipFeatures]
    alone: list[Prediction]
    calm: list[Prediction]
    calls: list[CallResult]
    val_calls: list[CallResult]
    policy: EscalationConfig
    summary: dict[str, Any]


def cross_validate(
    clips: Sequence[ClipFeatures],
    opts: TrainOptions,
    cfg: Config,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
    save_folds: Path | None = None,
) -> list[FoldOutput]:
    """Out-of-fold predictions for every clip and every test speaker's calls.

    Fold k tests on its speakers with a model trained on three other folds, stopped
    early and calibrated on fold k+1. The settings (`opts`) are fixed before it runs.
    """
    folds = assign_folds([c.label.speaker for c in clips])
    rng = random.Random(opts.seed)
    out = []
    for k in range(N_FOLDS):
        v = (k + 1) % N_FOLDS
        test = [c for c in clips if folds[c.label.speaker] == k]
        val = [c for c in clips if folds[c.label.speaker] == v]
        train = [c for c in clips if folds[c.label.speaker] not in (k, v)]
        t0 = time.perf_counter()
        net, info = fit_members(train, val, opts, _prefixed(progress, f"fold {k + 1}/{N_FOLDS} "),
                                jobs)
        # the anger index's calibration and the escalation thresholds are chosen on
        # the validation speakers' calls and only then applied to the test speakers'
        val_calls = calibrate_anger(net, val, opts.seed, cfg)
        if save_folds is not None:
            save_folds.mkdir(parents=True, exist_ok=True)
            torch.save({"net": net, "val": sorted({c.label.speaker for c in val}),
                        "test": sorted({c.label.speaker for c in test})},
                       save_folds / f"fold{k}.pt")
        policy = choose(val_calls, cfg.escalation)
        alone = predict_clips(net, test)
        calm = predict_clips(net, test, calm_references(test, rng))
        predict = net_predictor(net)
        calls = with_policy(run_calls(predict, plan_calls(test, opts.seed), cfg), policy)
        out.append(FoldOutput(test, alone, calm, calls, val_calls, policy, {
            "fold": k + 1, "test_speakers": sorted({c.label.speaker for c in test}),
            "n_test": len(test), "best_epoch": info["best_epoch"],
            "temperature": round(info["temperature"], 3),
            "anger_scaling": [round(float(net.anger_scale), 3), round(float(net.anger_shift), 3)],
            "escalation": as_dict(policy),
            "arousal_shift": round(info["arousal_shift"], 3),
            "seconds": round(time.perf_counter() - t0, 1), "test": clip_scores(test, alone),
            # each member's validation figures per epoch: how early stopping saw training
            "val_history": [m["history"] for m in info["members"]],
        }))
    return out


def net_predictor(net: nn.Module) -> Callable[[Sequence[AffectWindow]], list[AffectOutput]]:
    def predict(windows: Sequence[AffectWindow]) -> list[AffectOutput]:
        probs, aro, val, _ = predict_windows(net, windows)
        return [AffectOutput(float(aro[i]), float(val[i]), tuple(float(p) for p in probs[i]))
                for i in range(len(windows))]
    return predict


def calibrate_anger(net: AffectEnsemble, val: Sequence[ClipFeatures], seed: int,
                    cfg: Config) -> list[CallResult]:
    """Fit the anger index's scaling on the calls of ``val`` (its speakers' windows as
    a call reads them, causally), set it on ``net``, and return those calls replayed
    with it."""
    net.set_anger_scaling(1.0, 0.0)
    plans = plan_calls(val, seed)
    net.set_anger_scaling(*fit_anger_scaling(*tick_scores(
        run_calls(net_predictor(net), plans, cfg))))
    return run_calls(net_predictor(net), plans, cfg)


def final_fit(
    clips: Sequence[ClipFeatures],
    opts: TrainOptions,
    cfg: Config,
    val_fold: int = N_FOLDS - 1,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> tuple[AffectEnsemble, dict[str, Any]]:
    folds = assign_folds([c.label.speaker for c in clips])
    val = [c for c in clips if folds[c.label.speaker] == val_fold]
    train = [c for c in clips if folds[c.label.speaker] != val_fold]
    net, info = fit_members(train, val, opts, progress, jobs)
    calibrate_anger(net, val, opts.seed, cfg)
    info["anger_scaling"] = [float(net.anger_scale), float(net.anger_shift)]
    info["val_speakers"] = sorted({c.label.speaker for c in val})
    info["n_train"], info["n_val"] = len(train), len(val)
    return net, info
