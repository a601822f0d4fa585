"""The escalation policy, frame by frame at 4 Hz, and the watcher that runs it on the bus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from avatar_agent.core.aio import InlineExecutor
from avatar_agent.core.bus import EventBus, Subscription
from avatar_agent.core.config import EscalationConfig
from avatar_agent.core.events import (
    AffectUpdate,
    CallEnded,
    CallStarted,
    EscalationAcknowledged,
    HumanRequested,
    MicroExpressionSeen,
    SpeechEvent,
    Takeover,
    encode,
)
from avatar_agent.core.store import AsyncStore, Store
from avatar_agent.operators.escalation import (
    REASON_ANGER,
    REASON_FURIOUS,
    REASON_REQUEST,
    Escalation,
    EscalationPolicy,
)
from avatar_agent.operators.watcher import EscalationWatcher

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
    p = EscalationPolicy(EscalationConfig(rule="hold", anger_threshold=70, hold_s=5,
                                          on_furious=False))
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
    p = EscalationPolicy(EscalationConfig(rule="hold", anger_threshold=70, hold_s=1,
                                          on_furious=False))
    fired = feed(p, 0, 2, 70, "dissatisfied")
    assert [e.t for e in fired] == [1.0]


def test_evidence_rule_fires_sooner_for_a_stronger_reading() -> None:
    cfg = EscalationConfig(rule="evidence", evidence_ref=40, evidence_needed=100,
                           on_furious=False)
    # 95 adds 55 index-seconds a second: 100 is reached after 2 s (8 steps of 0.25 s)
    strong = feed(EscalationPolicy(cfg), 0, 10, 95, "dissatisfied")
    # 60 adds 20 a second: 5 s
    raised = feed(EscalationPolicy(cfg), 0, 10, 60, "dissatisfied")
    assert [e.t for e in strong] == [2.0] and [e.t for e in raised] == [5.0]
    assert strong[0].reason == REASON_ANGER and "index-seconds" in strong[0].detail


def test_evidence_rule_forgets_in_calm_and_ignores_the_hold() -> None:
    cfg = EscalationConfig(rule="evidence", evidence_ref=40, evidence_needed=100,
                           anger_threshold=50, hold_s=1, on_furious=False)
    p = EscalationPolicy(cfg)
    # 3 s at 70 = 90 index-seconds, not enough; 10 s of calm (index 20) wipes them
    assert feed(p, 0, 3.25, 70, "dissatisfied") == []
    assert p.evidence == pytest.approx(90)
    assert feed(p, 3.25, 10, 20, "calm") == []
    assert p.evidence == 0
    # the hold rule (50 for 1 s) is off under the evidence rule: 3 s at 70 again
    assert feed(p, 13.25, 3.25, 70, "dissatisfied") == []


def test_evidence_rule_needs_new_evidence_after_firing() -> None:
    cfg = EscalationConfig(rule="evidence", evidence_ref=40, evidence_needed=100,
                           cooldown_s=10, on_furious=False)
    fired = feed(EscalationPolicy(cfg), 0, 30, 90, "dissatisfied")
    # 50 a second: 2 s; the cooldown holds the next until 12 s, when the evidence
    # gathered since (10 s worth) is already enough
    assert [e.t for e in fired] == [2.0, 12.0, 22.0]


def test_furious_fires_at_once_on_entering_the_level() -> None:
    p = EscalationPolicy(EscalationConfig(rule="hold", anger_threshold=95, hold_s=5,
                                          on_furious=True))
    assert feed(p, 0, 3, 60, "dissatisfied") == []
    fired = feed(p, 3, 3, 72, "furious")
    assert [(e.reason, e.t, e.level) for e in fired] == [(REASON_FURIOUS, 3.0, "furious")]


def test_furious_off_does_not_fire() -> None:
    p = EscalationPolicy(EscalationConfig(rule="hold", anger_threshold=95, on_furious=False))
    assert feed(p, 0, 10, 80, "furious") == []


def test_cooldown_limits_repeats_then_rearms() -> None:
    p = EscalationPolicy(EscalationConfig(rule="hold", anger_threshold=70, hold_s=2, cooldown_s=30,
                                          on_furious=False))
    fired = feed(p, 0, 60, 80, "dissatisfied")
    # first after the 2 s hold; the next needs the cooldown AND a fresh full hold
    assert [e.t for e in fired] == [2.0, 32.0]
    assert p.fired == fired


def test_customer_request_fires_even_during_an_affect_cooldown() -> None:
    p = EscalationPolicy(EscalationConfig(rule="hold", anger_threshold=70, hold_s=1, cooldown_s=60))
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


# --- the watcher -------------------------------------------------------------------------

def affect(t: float, index: float, level: str = "dissatisfied") -> AffectUpdate:
    return AffectUpdate(call_id="c1", t=t, arousal=0.5, valence=-0.4, anger_index=index,
                        level=level, emotion="angry")


@pytest.fixture
def store(tmp_path: Path) -> AsyncStore:
    s = AsyncStore(Store(f"sqlite:///{tmp_path / 'calls.db'}"), InlineExecutor())
    s.store.call_started("c1", consent_analysis=True)
    return s


async def settle() -> None:
    """Let the watcher's task catch up with what was published."""
    for _ in range(10):
        await asyncio.sleep(0)


async def next_of(sub: Subscription, *kinds: type[Any]) -> Any:
    """The next event on the bus of one of `kinds`, skipping others."""
    async with asyncio.timeout(1):
        async for ev in sub:
            if isinstance(ev, kinds):
                return ev
    raise AssertionError(f"no {kinds} on the bus")


async def test_watcher_publishes_a_typed_escalation_with_the_calls_context(
    store: AsyncStore,
) -> None:
    bus = EventBus()
    watcher = EscalationWatcher(EscalationConfig(rule="hold", anger_threshold=70, hold_s=1,
                                                 on_furious=False), bus, store)
    with bus.subscribe() as sub:
        task = asyncio.create_task(watcher.run())
        await settle()
        bus.publish(CallStarted(call_id="c1", consent_analysis=True))
        bus.publish(SpeechEvent(call_id="c1", event="start", text="Hello", t=0.5))
        bus.publish(SpeechEvent(call_id="c1", event="end", text="Hello", t=1.5))
        bus.publish(MicroExpressionSeen(call_id="c1", t=1.0, expression="contempt",
                                        duration=0.3, peak=0.8))
        bus.publish(Takeover(call_id="c1", t=1.2, operator="alice", text="Hi"))
        for i in range(8):
            bus.publish(affect(2 + i * DT, 80))
        esc = await next_of(sub, Escalation)
        assert esc.call_id == "c1" and esc.reason == REASON_ANGER and esc.t == 3.0
        assert isinstance(esc.id, int) and isinstance(esc.created_at, str)
        ctx = esc.context
        assert len(ctx["curve"]) == 5 and ctx["curve"][0] == affect(2, 80).point()
        assert ctx["transcript"] == [{"t": 0.5, "text": "Hello", "role": "agent"}]
        assert ctx["events"] == [{"t": 1.0, "kind": "micro_expression",
                                  "expression": "contempt", "duration": 0.3, "peak": 0.8}]
        wire = encode(esc)
        assert wire["type"] == "escalation" and wire["call_id"] == "c1"
        assert set(wire["context"]) == {"curve", "events", "transcript"}

        # the call list shows it open until someone acknowledges it
        call = watcher.calls["c1"]
        assert call.open_escalation is not None and call.open_escalation.id == esc.id
        assert call.open_escalation.context == {} and call.consent
        assert call.events[-1] == {"t": 3.0, "kind": "escalation", "reason": REASON_ANGER}
        bus.publish(EscalationAcknowledged(call_id="c1", id=esc.id + 1, acknowledged_by="bob",
                                           acknowledged_at=None))
        bus.publish(EscalationAcknowledged(call_id="c1", id=esc.id, acknowledged_by="alice",
                                           acknowledged_at=None))
        await next_of(sub, EscalationAcknowledged)
        await next_of(sub, EscalationAcknowledged)
        await settle()
        assert watcher.calls["c1"].open_escalation is None

        bus.publish(CallEnded(call_id="c1", reason="hangup"))
        bus.publish(EscalationAcknowledged(call_id="c1", id=esc.id, acknowledged_by="bob",
                                           acknowledged_at=None))
        for _ in range(2):
            await next_of(sub, CallEnded, EscalationAcknowledged)
        await settle()
        assert "c1" not in watcher.calls  # a late acknowledgement brings no call back
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stored = store.store.events("c1")
    assert [(e["kind"], e["id"]) for e in stored] == [("escalation", esc.id)]
    assert watcher.raised == 1


class BrokenStore(AsyncStore):
    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")


async def test_watcher_still_alerts_when_the_store_fails(tmp_path: Path) -> None:
    bus = EventBus()
    store = BrokenStore(Store(f"sqlite:///{tmp_path / 'calls.db'}"), InlineExecutor())
    watcher = EscalationWatcher(EscalationConfig(), bus, store)
    with bus.subscribe() as sub:
        task = asyncio.create_task(watcher.run())
        await settle()
        bus.publish(CallStarted(call_id="c2", consent_analysis=False))
        bus.publish(HumanRequested(call_id="c2", t=4.0))
        esc = await next_of(sub, Escalation)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert esc.call_id == "c2" and esc.id is None and esc.reason == REASON_REQUEST
    assert esc.context == {"curve": [], "transcript": [],
                           "events": [{"t": 4.0, "kind": "human_request"}]}
    assert "created_at" not in encode(esc) and encode(esc)["id"] is None


def test_an_unanswered_turn_escalates_with_the_customers_words() -> None:
    policy = EscalationPolicy(EscalationConfig(cooldown_s=60))
    assert policy.update(1.0, 95.0, "furious") is not None  # an affect escalation first
    esc = policy.unanswered(2.0, "What is the meaning of life?")
    assert esc is not None and esc.reason == "unanswered"  # not swallowed by its cooldown
    assert "meaning of life" in esc.detail
    assert policy.unanswered(30.0, "And why?") is None  # the same reason within the cooldown
    assert policy.unanswered(70.0, "And why?") is not None
    assert EscalationPolicy(EscalationConfig(on_unanswered=False)).unanswered(1.0, "x") is None
