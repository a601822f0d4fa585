"""Typed events: what a call tells its customer, the operators and the store.

Every event is a frozen dataclass with a `type` (the JSON message's `type`). They are
turned into JSON in one place, `encode`, so the data channel, the operators' WebSocket,
the store and the escalation watcher all see the same shapes: the ones the README's
route and data-channel tables document (tests/unit/test_event_contract.py checks them).

The customer's page gets a call's own events without `call_id` (`for_customer=True`);
everyone else gets them with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event on the bus; `type` names the JSON message."""

    type: ClassVar[str] = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(Event):
    type: ClassVar[str] = "call"
    event: Literal["started"] = "started"
    consent_analysis: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    type: ClassVar[str] = "call"
    event: Literal["ended"] = "ended"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AffectUpdate(Event):
    """The customer's affect at media time `t` (consent only)."""

    type: ClassVar[str] = "affect"
    t: float
    arousal: float
    valence: float
    anger_index: float
    level: str
    emotion: str

    def point(self) -> dict[str, Any]:
        """The curve point kept for the timeline: the message without type or call."""
        return {"t": self.t, "arousal": self.arousal, "valence": self.valence,
                "anger_index": self.anger_index, "level": self.level, "emotion": self.emotion}


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelChanged(Event):
    """The customer's level changed (a timeline `event` of kind `level`)."""

    type: ClassVar[str] = "event"
    t: float
    kind: Literal["level"] = "level"
    level: str
    anger_index: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MicroExpressionSeen(Event):
    """A micro-expression on the customer's face (a timeline `event`)."""

    type: ClassVar[str] = "event"
    t: float
    kind: Literal["micro_expression"] = "micro_expression"
    expression: str
    duration: float
    peak: float


@dataclass(frozen=True, slots=True)
class Gaze:
    hold: float
    saccade_rate: float


@dataclass(frozen=True, slots=True)
class Brow:
    raise_: float  # `raise` on the wire: a Python keyword
    frown: float


@dataclass(frozen=True, slots=True)
class Mouth:
    curve: float


@dataclass(frozen=True, slots=True)
class Head:
    tilt: float
    nod: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CueUpdate(Event):
    """The persona's cue targets the avatar moves toward, sent at 10 Hz."""

    type: ClassVar[str] = "cues"
    t: float
    lean: float
    gaze: Gaze
    brow: Brow
    mouth: Mouth
    head: Head
    speech_rate: float
    state: str
    level: str | None
    persona: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechEvent(Event):
    """The avatar started or ended a sentence, at media time `t`; `interrupted` when
    the customer cut it short (barge-in)."""

    type: ClassVar[str] = "speech"
    event: Literal["start", "end"]
    text: str
    t: float
    interrupted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HumanRequested(Event):
    """The customer pressed "Talk to a person"."""

    type: ClassVar[str] = "customer"
    event: Literal["human_request"] = "human_request"
    t: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(Event):
    """What the customer said in one turn (speech recognition), or a line the avatar
    said; `t_start`, `t_end` in seconds on the call's media clock."""

    type: ClassVar[str] = "transcript"
    role: Literal["customer", "agent"]
    text: str
    t_start: float
    t_end: float
    final: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Unanswered(Event):
    """The agent could not answer the customer's words (nothing in the knowledge base
    close enough, or an entry that needs a person): the escalation policy decides."""

    type: ClassVar[str] = "customer"
    event: Literal["unanswered"] = "unanswered"
    t: float
    text: str
    score: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation(Event):
    """An operator is needed; `context` is the call's curve, events and transcript."""

    type: ClassVar[str] = "escalation"
    id: int | None
    t: float
    reason: str
    detail: str
    anger_index: float | None
    level: str | None
    created_at: str | None = None  # ISO 8601 in UTC, as the store gives it
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationAcknowledged(Event):
    type: ClassVar[str] = "escalation_ack"
    id: int
    acknowledged_by: str
    acknowledged_at: str | None  # ISO 8601 in UTC, as the store gives it


@dataclass(frozen=True, slots=True, kw_only=True)
class Takeover(Event):
    """An operator spoke through the avatar."""

    type: ClassVar[str] = "takeover"
    t: float
    operator: str
    text: str


# Fields whose wire name differs from the attribute name.
_WIRE_NAMES = {"raise_": "raise"}
# Optional fields left out of the JSON while they hold their default (the README's shapes).
_OMIT_DEFAULT = {(SpeechEvent, "interrupted"), (Escalation, "created_at")}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_WIRE_NAMES.get(f.name, f.name): _plain(getattr(value, f.name))
                for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode(event: Event, *, for_customer: bool = False) -> dict[str, Any]:
    """The event as the JSON object the README documents; the one place this happens."""
    out: dict[str, Any] = {"type": event.type}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "call_id" and (for_customer or not value):
            continue
        if (type(event), f.name) in _OMIT_DEFAULT and value == f.default:
            continue
        out[_WIRE_NAMES.get(f.name, f.name)] = _plain(value)
    return out


def timeline_entry(event: Event) -> dict[str, Any]:
    """The event as one entry of its call's stored timeline: no `type`, no `call_id`."""
    out = encode(event, for_customer=True)
    del out["type"]
    return out
