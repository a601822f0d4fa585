"""The escalation policy, frame by frame at 4 Hz."""

from __future__ import annotations

from avatar_agent.core.config import EscalationConfig
from avatar_agent.operators.escalation import (
    REASON_ANGER,
    REASON_FURIOUS,
    REASON_REQUEST,
    Escalation,
    EscalationPolicy,
)

DT = 0.25


def feed(policy: EscalationPolicy, t0: float, seconds: float, index: float, level: str
         ) -> list[Escalation]:
    out = []
    for i in range(round(seconds / DT)):
        esc = policy.update(t0 + i * DT, index, level)
        if esc is not None:
            out.append(esc)
    return out


def test_sustained_anger_fires_after_the_hold_and_not_before() -> None:
    p = EscalationPolicy(EscalationConfig(anger_threshold=70, hold_s=5, on_furious=False))
    assert feed(p, 0, 10, 20, "calm") == []
    # 4.75 s above the threshold, then one frame below: the hold starts over
    assert feed(p, 10, 5.0, 75, "dissatisfied") == []
    assert feed(p, 15, 0.25, 69.9, "dissatisfied") == []
    fired = feed(p, 15.25, 6, 75, "dissatisfied")
    assert len(fired) == 1
    esc = fired[0]
    assert esc.reason == REASON_ANGER and esc.t == 20.25 and esc.anger_index == 75
    assert "for 5.0 s" in esc.detail


def test_exactly_at_threshold_counts() -> None:
    p = EscalationPolicy(EscalationConfig(anger_threshold=70, hold_s=1, on_furious=False))
    fired = feed(p, 0, 2, 70, "dissatisfied")
    assert [e.t for e in fired] == [1.0]


def test_furious_fires_at_once_on_entering_the_level() -> None:
    p = EscalationPolicy(EscalationConfig(anger_threshold=95, hold_s=5, on_furious=True))
    assert feed(p, 0, 3, 60, "dissatisfied") == []
    fired = feed(p, 3, 3, 72, "furious")
    assert [(e.reason, e.t, e.level) for e in fired] == [(REASON_FURIOUS, 3.0, "furious")]


def test_furious_off_does_not_fire() -> None:
    p = EscalationPolicy(EscalationConfig(anger_threshold=95, on_furious=False))
    assert feed(p, 0, 10, 80, "furious") == []


def test_cooldown_limits_repeats_then_rearms() -> None:
    p = EscalationPolicy(EscalationConfig(anger_threshold=70, hold_s=2, cooldown_s=30,
                                          on_furious=False))
    fired = feed(p, 0, 60, 80, "dissatisfied")
    # first after the 2 s hold; the next needs the cooldown AND a fresh full hold
    assert [e.t for e in fired] == [2.0, 32.0]
    assert p.fired == fired


def test_customer_request_fires_even_during_an_affect_cooldown() -> None:
    p = EscalationPolicy(EscalationConfig(anger_threshold=70, hold_s=1, cooldown_s=60))
    assert len(feed(p, 0, 2, 80, "dissatisfied")) == 1
    req = p.customer_request(3.0)
    assert req is not None and req.reason == REASON_REQUEST
    assert req.anger_index == 80 and req.level == "dissatisfied"
    assert p.customer_request(10.0) is None  # pressing the button again within the cooldown
    assert p.customer_request(63.5) is not None


def test_customer_request_without_affect_and_when_disabled() -> None:
    p = EscalationPolicy(EscalationConfig())
    req = p.customer_request(1.0)
    assert req is not None and req.anger_index is None and req.level is None
    off = EscalationPolicy(EscalationConfig(on_customer_request=False))
    assert off.customer_request(1.0) is None
