"""Choosing the escalation policy's thresholds on validation calls, never on test calls.

The anger index is calibrated per window (of windows near 70, about 70 % are angry),
so a single window rarely reaches 70; a call, though, accumulates evidence over
seconds. How high and how long the smoothed index must stay before an operator is
alerted is a property of the whole chain, so it is chosen the way the model's other
settings are: on the calls of each fold's validation speakers (the early-stopping
fold), then applied unchanged to the fold's test speakers. The rule for choosing is
fixed in advance:

1. no escalation at all in any calm-only validation call (false alarms are the cost
   an operator pays for every call), with a margin: the index must also stay below
   the threshold over every calm-only call;
2. among the thresholds that pass, the most calls that start angry escalated within
   10 s, then the shortest median time, then the highest threshold and longest hold.

Pure: recorded call traces in (:class:`CallResult`), a replay of the operators' own
:class:`EscalationPolicy` on them, no model needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from avatar_agent.core.config import EscalationConfig
from avatar_agent.operators.escalation import EscalationPolicy
from avatar_agent.training.calls import ANGRY_FIRST, CALM_ONLY, ESCALATE_WITHIN_S, CallResult

THRESHOLDS = (40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0)
HOLDS = (1.0, 2.0, 3.0, 4.0, 5.0)


def replay(result: CallResult, cfg: EscalationConfig) -> list[float]:
    """The escalation times the policy with ``cfg`` gives on a recorded call."""
    policy = EscalationPolicy(cfg)
    out = []
    for t, anger, level in zip(result.times, result.anger, result.levels, strict=True):
        if policy.update(t, anger, level) is not None:
            out.append(t)
    return out


def with_policy(results: Sequence[CallResult], cfg: EscalationConfig) -> list[CallResult]:
    """The same calls with their escalations as ``cfg`` would have raised them."""
    return [replace(r, escalations=replay(r, cfg)) for r in results]


def _score(results: Sequence[CallResult], cfg: EscalationConfig) -> tuple[float, ...] | None:
    """None if the policy fails rule 1 on these calls, else a key to maximise."""
    calm = [r for r in results if r.plan.kind == CALM_ONLY]
    for r in calm:
        if replay(r, cfg) or max(r.anger, default=0.0) >= cfg.anger_threshold:
            return None
    firsts = []
    for r in results:
        if r.plan.kind == ANGRY_FIRST:
            esc = replay(r, cfg)
            firsts.append(esc[0] if esc else np.inf)
    if not firsts:
        return (0.0, 0.0, cfg.anger_threshold, cfg.hold_s)
    within = float(np.mean([t <= ESCALATE_WITHIN_S for t in firsts]))
    return (within, -float(np.median(firsts)), cfg.anger_threshold, cfg.hold_s)


def choose(results: Sequence[CallResult], base: EscalationConfig) -> EscalationConfig:
    """The thresholds rule 2 prefers among those rule 1 allows on ``results``; the
    configured ones when none pass (the safe side: as before)."""
    best: tuple[tuple[float, ...], EscalationConfig] | None = None
    for threshold in THRESHOLDS:
        for hold in HOLDS:
            cfg = base.model_copy(update={"anger_threshold": threshold, "hold_s": hold})
            key = _score(results, cfg)
            if key is not None and (best is None or key > best[0]):
                best = (key, cfg)
    return best[1] if best is not None else base
