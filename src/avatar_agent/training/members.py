"""Training the ensemble's members: the same recipe from different seeds.

Each member is :func:`avatar_agent.training.train.fit` with ``seed + i``: its own
initial weights, order of windows, crops, references and augmentation; each stops
early and is calibrated on the same held-out speakers. Members train one after another,
or ``jobs`` at a time in forked worker processes (each one thread), which share the
parent's clips without copying them.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from avatar_agent.affect.model import AffectNet
from avatar_agent.affect.predictor import AffectEnsemble
from avatar_agent.training.dataset import ClipFeatures
from avatar_agent.training.train import TrainOptions, fit

# what a forked worker reads: set just before the pool forks, so the clips are shared
# with the workers through the fork instead of being pickled to each
_SHARED: dict[str, Any] = {}


def _fit_one(seed: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    torch.set_num_threads(1)
    net, info = fit(_SHARED["train"], _SHARED["val"], replace(_SHARED["opts"], seed=seed))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, info


def fit_members(
    train: Sequence[ClipFeatures],
    val: Sequence[ClipFeatures],
    opts: TrainOptions,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> tuple[AffectEnsemble, dict[str, Any]]:
    """``opts.members`` networks trained on ``train``, each stopped early and
    calibrated on ``val``; the ensemble, and what training says about it (the first
    member's history, every member's best epoch and temperatures, and their means)."""
    seeds = [opts.seed + i for i in range(max(1, opts.members))]
    results: list[tuple[dict[str, torch.Tensor], dict[str, Any]]] = []
    if jobs > 1 and len(seeds) > 1:
        _SHARED.update(train=train, val=val, opts=opts)
        try:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(jobs, len(seeds)), mp_context=ctx) as pool:
                for i, res in enumerate(pool.map(_fit_one, seeds)):
                    results.append(res)
                    if progress is not None:
                        progress(f"member {i + 1}/{len(seeds)}: best epoch "
                                 f"{res[1]['best_epoch']}")
        finally:
            _SHARED.clear()
    else:
        for i, seed in enumerate(seeds):
            tell = (None if progress is None
                    else (lambda m, i=i: progress(f"member {i + 1}/{len(seeds)} {m}")))
            net, info = fit(train, val, replace(opts, seed=seed), tell)
            results.append((net.state_dict(), info))
    members = []
    for state, _info in results:
        net = AffectNet(hidden=opts.hidden, dropout=opts.dropout)
        net.load_state_dict(state)
        members.append(net.eval())
    infos = [info for _state, info in results]
    summary = {
        **infos[0],
        "members": [{k: info[k] for k in ("best_epoch", "temperature", "face_temperature",
                                          "arousal_shift", "val", "history")}
                    for info in infos],
        "best_epoch": float(np.mean([i["best_epoch"] for i in infos])),
    }
    for key in ("temperature", "face_temperature", "arousal_shift"):
        summary[key] = float(np.mean([i[key] for i in infos]))
    return AffectEnsemble(members), summary
