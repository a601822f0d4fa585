"""Choosing the escalation rule on validation calls (training/policy.py), on recorded
traces built by hand: the choice is pure, no model needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar_agent.affect.labels import ClipLabel, arousal_of
from avatar_agent.core.config import EscalationConfig
from avatar_agent.perception.features import VOICE_DIM, VOICE_HZ, VOICED_COL
from avatar_agent.training.calls import ANGRY_FIRST, CALM_ONLY, CallPlan, CallResult, Segment
from avatar_agent.training.dataset import ClipFeatures
from avatar_agent.training.policy import choose, describe, replay

DT = 0.25


def _clip(speaker: str, emotion: str) -> ClipFeatures:
    voice = np.zeros((VOICE_HZ, VOICE_DIM), np.float32)
    voice[:, VOICED_COL] = 1.0
    label = ClipLabel("synth", f"synth:{speaker}", emotion, emotion, arousal_of(emotion), 1,
                      "audio-only")
    return ClipFeatures(Path(f"{speaker}-{emotion}"), label, voice, None, None, None, None)


def _call(speaker: str, kind: str, index: list[float], level: str) -> CallResult:
    emotion = "angry" if kind == ANGRY_FIRST else "calm"
    seconds = len(index) * DT
    plan = CallPlan(speaker, kind, "voice", (Segment(_clip(speaker, emotion), 0.0, seconds),))
    times = [i * DT for i in range(len(index))]
    return CallResult(plan, times=times, anger=index, raw_anger=index,
                      levels=[level] * len(index), segment_of_tick=[0] * len(index))


def _bursts(seconds: float) -> list[float]:
    """Anger in bursts: 0.75 s at 90, then 0.5 s at 38, over and over. No 1 s stretch
    ever stays above 40, so no hold setting on the grid can catch it."""
    cycle = [90.0] * 3 + [38.0] * 2
    return (cycle * int(seconds / (len(cycle) * DT) + 1))[: round(seconds / DT)]


def _calls() -> list[CallResult]:
    out = []
    for s in ("a", "b", "c"):
        out.append(_call(s, CALM_ONLY, [35.0] * round(60 / DT), "calm"))
        out.append(_call(s, ANGRY_FIRST, _bursts(20), "dissatisfied"))
    return out


def test_bursts_of_anger_are_caught_by_evidence_and_missed_by_any_hold() -> None:
    calls, base = _calls(), EscalationConfig()
    hold = choose(calls, base, ("hold",))
    assert hold.rule == "hold"
    assert all(replay(r, hold) == [] for r in calls)
    both = choose(calls, base)
    assert both.rule == "evidence", describe(both)
    # the calm index (35) sits above a reference of 30: evidence would pile up over
    # a long calm call, so only references above it pass the margin
    assert both.evidence_ref > 35
    for r in calls:
        fired = replay(r, both)
        if r.plan.kind == CALM_ONLY:
            assert fired == []
        else:
            assert fired and fired[0] <= 10.0


def test_no_setting_passes_rule_one_keeps_the_configured_one() -> None:
    # a calm-only call at 100: every threshold is reached, every evidence piles up
    calls = [_call("a", CALM_ONLY, [100.0] * 80, "calm"),
             _call("a", ANGRY_FIRST, [100.0] * 80, "furious")]
    base = EscalationConfig(anger_threshold=66, hold_s=3)
    assert choose(calls, base) == base
