"""Per-process escalation watcher: reads the event bus, runs each call's policy, and
raises escalations that carry the call's context.

It keeps, per live call, what an operator needs to pick the call up without asking
the customer to repeat themselves: the emotion curve so far (last `CONTEXT_POINTS`),
the events and the transcript of both sides (the customer's recognised words and the
avatar's captions). It works from the bus alone, so the context is
as fresh as the dashboard's, not as stale as the last batch written to the store.
The context keeps events in their stored-timeline form (`core.events.timeline_entry`),
as the dashboard reads a call's timeline.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from avatar_agent.core.bus import EventBus
from avatar_agent.core.config import EscalationConfig
from avatar_agent.core.events import (
    AffectUpdate,
    CallEnded,
    CallStarted,
    Escalation,
    EscalationAcknowledged,
    Event,
    HumanRequested,
    LevelChanged,
    MicroExpressionSeen,
    SpeechEvent,
    Transcript,
    Unanswered,
    timeline_entry,
)
from avatar_agent.core.store import AsyncStore
from avatar_agent.operators.escalation import EscalationPolicy

log = logging.getLogger(__name__)

CONTEXT_POINTS = 2400  # 10 minutes of curve at 4 Hz
CONTEXT_EVENTS = 500
CONTEXT_CAPTIONS = 200
SPARK_POINTS = 120  # 30 s of anger index at 4 Hz for the call list


@dataclass
class CallContext:
    policy: EscalationPolicy
    consent: bool = False
    curve: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=CONTEXT_POINTS))
    events: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=CONTEXT_EVENTS))
    transcript: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=CONTEXT_CAPTIONS))
    open_escalation: Escalation | None = None  # as published, without its context

    def spark(self) -> list[float]:
        return [p["anger_index"] for p in list(self.curve)[-SPARK_POINTS:]]

    def snapshot(self) -> dict[str, Any]:
        return {"curve": list(self.curve), "events": list(self.events),
                "transcript": list(self.transcript)}


class EscalationWatcher:
    def __init__(self, cfg: EscalationConfig, bus: EventBus, store: AsyncStore) -> None:
        self.cfg = cfg
        self.bus = bus
        self.store = store
        self.calls: dict[str, CallContext] = {}
        self.raised = 0

    def context(self, call_id: str) -> CallContext:
        ctx = self.calls.get(call_id)
        if ctx is None:
            ctx = self.calls[call_id] = CallContext(EscalationPolicy(self.cfg))
        return ctx

    def handle(self, ev: Event) -> Escalation | None:
        """Fold one bus event into its call's context; the escalation it causes, if any,
        as the policy gave it (no call, id or context yet)."""
        if not ev.call_id:
            return None
        call_id = ev.call_id
        match ev:
            case CallStarted():
                self.context(call_id).consent = ev.consent_analysis
            case CallEnded():
                self.calls.pop(call_id, None)
            case AffectUpdate():
                ctx = self.context(call_id)
                ctx.curve.append(ev.point())
                return ctx.policy.update(ev.t, ev.anger_index, ev.level)
            case LevelChanged() | MicroExpressionSeen():
                self.context(call_id).events.append(timeline_entry(ev))
            case SpeechEvent(event="start"):
                self.context(call_id).transcript.append(
                    {"t": ev.t, "text": ev.text, "role": "agent"})
            case Transcript():
                self.context(call_id).transcript.append(
                    {"t": ev.t_start, "text": ev.text, "role": ev.role})
            case Unanswered():
                ctx = self.context(call_id)
                ctx.events.append({"t": ev.t, "kind": "unanswered", "text": ev.text})
                return ctx.policy.unanswered(ev.t, ev.text)
            case HumanRequested():
                ctx = self.context(call_id)
                ctx.events.append({"t": ev.t, "kind": "human_request"})
                return ctx.policy.customer_request(ev.t)
            case EscalationAcknowledged():
                # .get: an acknowledgement may come after its call ended
                known = self.calls.get(call_id)
                if (known is not None and known.open_escalation is not None
                        and known.open_escalation.id == ev.id):
                    known.open_escalation = None
        return None

    async def raise_escalation(self, call_id: str, esc: Escalation) -> Escalation:
        """Store the policy's escalation; the event to publish, with id and context."""
        row = await self.store.run(self.store.store.add_escalation, call_id, esc.t, esc.reason,
                                   esc.detail)
        await self.store.add_events(call_id, [{"t": esc.t, "kind": "escalation", "id": row["id"],
                                               "reason": esc.reason, "detail": esc.detail}])
        ctx = self.context(call_id)
        stored = dataclasses.replace(esc, call_id=call_id, id=row["id"],
                                     created_at=row["created_at"])
        ctx.open_escalation = stored
        msg = dataclasses.replace(stored, context=ctx.snapshot())
        ctx.events.append({"t": esc.t, "kind": "escalation", "reason": esc.reason})
        self.raised += 1
        log.warning("call %s escalated: %s", call_id, esc.detail)
        return msg

    async def run(self) -> None:
        # other workers' calls are judged there; only an operator's acknowledgement,
        # taken wherever they are signed in, concerns this worker's calls from afar
        with self.bus.subscribe(maxsize=4096, remote=(EscalationAcknowledged,)) as sub:
            async for ev in sub:
                esc = self.handle(ev)
                if esc is None:
                    continue
                call_id = ev.call_id
                try:
                    msg = await self.raise_escalation(call_id, esc)
                except Exception:  # the alert matters more than its row: raise it anyway
                    log.exception("could not store the escalation of call %s", call_id)
                    msg = dataclasses.replace(esc, call_id=call_id,
                                              context=self.context(call_id).snapshot())
                self.bus.publish(msg)
