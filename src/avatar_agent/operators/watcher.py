"""Per-process escalation watcher: reads the event bus, runs each call's policy, and
raises escalations that carry the call's context.

It keeps, per live call, what an operator needs to pick the call up without asking
the customer to repeat themselves: the emotion curve so far (last `CONTEXT_POINTS`),
the events and the avatar's captions. It works from the bus alone, so the context is
as fresh as the dashboard's, not as stale as the last batch written to the store.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Any

from avatar_agent.core.bus import Event, EventBus
from avatar_agent.core.config import EscalationConfig
from avatar_agent.core.store import AsyncStore
from avatar_agent.operators.escalation import Escalation, EscalationPolicy

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
    open_escalation: dict[str, Any] | None = None

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
        """Fold one bus event into its call's context; the escalation it causes, if any."""
        call_id = ev.get("call_id")
        if not isinstance(call_id, str):
            return None
        kind = ev.get("type")
        if kind == "call":
            if ev.get("event") == "started":
                self.context(call_id).consent = bool(ev.get("consent_analysis"))
            elif ev.get("event") == "ended":
                self.calls.pop(call_id, None)
            return None
        ctx = self.context(call_id)
        if kind == "affect":
            ctx.curve.append({k: ev[k] for k in
                              ("t", "arousal", "valence", "anger_index", "level", "emotion")})
            return ctx.policy.update(float(ev["t"]), float(ev["anger_index"]), str(ev["level"]))
        if kind == "event":
            ctx.events.append({k: v for k, v in ev.items() if k not in ("type", "call_id")})
        elif kind == "speech" and ev.get("event") == "start":
            ctx.transcript.append({"t": ev["t"], "text": ev["text"]})
        elif kind == "customer" and ev.get("event") == "human_request":
            ctx.events.append({"t": ev["t"], "kind": "human_request"})
            return ctx.policy.customer_request(float(ev["t"]))
        elif (kind == "escalation_ack" and ctx.open_escalation is not None
              and ctx.open_escalation["id"] == ev.get("id")):
            ctx.open_escalation = None
        return None

    async def raise_escalation(self, call_id: str, esc: Escalation) -> dict[str, Any]:
        row = await self.store.run(self.store.store.add_escalation, call_id, esc.t, esc.reason,
                                   esc.detail)
        await self.store.add_events(call_id, [{"t": esc.t, "kind": "escalation", "id": row["id"],
                                               "reason": esc.reason, "detail": esc.detail}])
        ctx = self.context(call_id)
        msg = {
            "type": "escalation", "call_id": call_id, "id": row["id"], "t": esc.t,
            "reason": esc.reason, "detail": esc.detail, "anger_index": esc.anger_index,
            "level": esc.level, "created_at": row["created_at"], "context": ctx.snapshot(),
        }
        ctx.open_escalation = {k: v for k, v in msg.items() if k != "context"}
        ctx.events.append({"t": esc.t, "kind": "escalation", "reason": esc.reason})
        self.raised += 1
        log.warning("call %s escalated: %s", call_id, esc.detail)
        return msg

    async def run(self) -> None:
        with self.bus.subscribe(maxsize=4096) as sub:
            async for ev in sub:
                esc = self.handle(ev)
                if esc is None:
                    continue
                call_id = str(ev["call_id"])
                try:
                    msg = await self.raise_escalation(call_id, esc)
                except Exception:  # the alert matters more than its row: raise it anyway
                    log.exception("could not store the escalation of call %s", call_id)
                    msg = {"type": "escalation", "call_id": call_id, "id": None, "t": esc.t,
                           "reason": esc.reason, "detail": esc.detail,
                           "anger_index": esc.anger_index, "level": esc.level,
                           "context": self.context(call_id).snapshot()}
                self.bus.publish(msg)
