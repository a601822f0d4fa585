"""Choosing the escalation policy's thresholds on validation calls, never on test calls.

The anger index is calibrated per window (of windows near 70, about 70 % are angry),
so a single window rarely reaches 70; a call, though, accumulates evidence over
seconds. How high and how long the smoothed index must stay before an operator is
alerted is a property of the whole chain, so it is chosen the way the model's other
settings are: on the calls of each fold's validation speakers (the early-stopping
fold), then applied unchanged to the fold's test speakers. The rule for choosing is
fixed in advance:

1. no escalation at all in any calm-only validation call (false alarms are the cost
   an operator pays for every call), with a margin: for the hold rule the index must
   also stay below the threshold over every calm-only call; for the evidence rule
   (a CUSUM, `operators/escalation.py`) the evidence must stay at or below half of
   what escalates;
2. among the settings that pass, of either rule, the most calls that start angry
   escalated within 10 s, then the shortest median time; on a tie the hold rule (the
   simpler one), then the highest threshold and longest hold, or the highest
   reference and most evidence.

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
EVIDENCE_REFS = (30.0, 40.0, 50.0, 60.0)
EVIDENCE_NEEDED = (25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0)


def replay_policy(result: CallResult, cfg: EscalationConfig) -> tuple[list[float], float]:
    """The escalation times the policy with ``cfg`` gives on a recorded call, and the
    most evidence it held at any moment (0 when the evidence rule is off)."""
    policy = EscalationPolicy(cfg)
    out = []
    peak = 0.0
    for t, anger, level in zip(result.times, result.anger, result.levels, strict=True):
        fired = policy.update(t, anger, level)
        peak = max(peak, policy.evidence)
        if fired is not None:
            out.append(t)
    return out, peak


def replay(result: CallResult, cfg: EscalationConfig) -> list[float]:
    """The escalation times the policy with ``cfg`` gives on a recorded call."""
    return replay_policy(result, cfg)[0]


def with_policy(results: Sequence[CallResult], cfg: EscalationConfig) -> list[CallResult]:
    """The same calls with their escalations as ``cfg`` would have raised them."""
    return [replace(r, escalations=replay(r, cfg)) for r in results]


def _calm_margin(r: CallResult, cfg: EscalationConfig) -> bool:
    """Rule 1 on one calm-only call: no escalation, and room to spare."""
    times, peak = replay_policy(r, cfg)
    if times:
        return False
    if cfg.rule == "evidence":
        return peak <= cfg.evidence_needed / 2
    return max(r.anger, default=0.0) < cfg.anger_threshold


def _score(results: Sequence[CallResult], cfg: EscalationConfig) -> tuple[float, ...] | None:
    """None if the policy fails rule 1 on these calls, else a key to maximise."""
    if not all(_calm_margin(r, cfg) for r in results if r.plan.kind == CALM_ONLY):
        return None
    if cfg.rule == "hold":
        tie = (1.0, cfg.anger_threshold, cfg.hold_s)
    else:
        tie = (0.0, cfg.evidence_ref, cfg.evidence_needed)
    firsts = []
    for r in results:
        if r.plan.kind == ANGRY_FIRST:
            esc = replay(r, cfg)
            firsts.append(esc[0] if esc else np.inf)
    if not firsts:
        return (0.0, 0.0, *tie)
    within = float(np.mean([t <= ESCALATE_WITHIN_S for t in firsts]))
    return (within, -float(np.median(firsts)), *tie)


def candidates(base: EscalationConfig) -> list[EscalationConfig]:
    """Every setting the choice considers: the hold rule's grid, then the evidence
    rule's."""
    out = [base.model_copy(update={"rule": "hold", "anger_threshold": th, "hold_s": hold})
           for th in THRESHOLDS for hold in HOLDS]
    out += [base.model_copy(update={"rule": "evidence", "evidence_ref": ref,
                                    "evidence_needed": need})
            for ref in EVIDENCE_REFS for need in EVIDENCE_NEEDED]
    return out


def choose(results: Sequence[CallResult], base: EscalationConfig,
           rules: Sequence[str] = ("hold", "evidence")) -> EscalationConfig:
    """The setting rule 2 prefers among those rule 1 allows on ``results`` (of the
    given ``rules``); the configured one when none pass (the safe side: as before)."""
    best: tuple[tuple[float, ...], EscalationConfig] | None = None
    for cfg in candidates(base):
        if cfg.rule not in rules:
            continue
        key = _score(results, cfg)
        if key is not None and (best is None or key > best[0]):
            best = (key, cfg)
    return best[1] if best is not None else base


def describe(cfg: EscalationConfig) -> str:
    """One line for the card: which rule and its settings."""
    if cfg.rule == "evidence":
        return (f"evidence: index above {cfg.evidence_ref:.0f} summing to "
                f"{cfg.evidence_needed:.0f} index-seconds")
    return f"hold: index {cfg.anger_threshold:.0f} for {cfg.hold_s:.0f} s"


def as_dict(cfg: EscalationConfig) -> dict[str, object]:
    """The chosen setting as the report stores it."""
    return {**cfg.model_dump(include={"rule", "anger_threshold", "hold_s", "evidence_ref",
                                      "evidence_needed"}), "text": describe(cfg)}
