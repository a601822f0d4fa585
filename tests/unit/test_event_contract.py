"""The events' JSON is what README.md documents: the `agent` data channel's messages and
the `/api/events` WebSocket's types.

The expected shapes are read from the README itself, so a renamed field, a new field,
or a README edit that no longer matches the code fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from avatar_agent.core import events as ev_mod
from avatar_agent.core.events import (
    AffectUpdate,
    Brow,
    CallEnded,
    CallStarted,
    CueUpdate,
    Escalation,
    EscalationAcknowledged,
    Event,
    Gaze,
    Head,
    HumanRequested,
    LevelChanged,
    MicroExpressionSeen,
    Mouth,
    SpeechEvent,
    Takeover,
    Transcript,
    Unanswered,
    encode,
    timeline_entry,
)

README = Path(__file__).resolve().parents[2] / "README.md"
CALL = "c0ffee"

# One instance of every event type, with every optional field at its default.
SAMPLES: list[Event] = [
    CallStarted(call_id=CALL, consent_analysis=True),
    CallEnded(call_id=CALL, reason="hangup"),
    AffectUpdate(call_id=CALL, t=1.0, arousal=0.2, valence=-0.1, anger_index=30.0,
                 level="calm", emotion="neutral"),
    LevelChanged(call_id=CALL, t=2.0, level="dissatisfied", anger_index=55.0),
    MicroExpressionSeen(call_id=CALL, t=3.0, expression="contempt", duration=0.3, peak=0.7),
    CueUpdate(call_id=CALL, t=4.0, lean=0.1, gaze=Gaze(hold=0.6, saccade_rate=0.3),
              brow=Brow(raise_=0.2, frown=0.0), mouth=Mouth(curve=0.3),
              head=Head(tilt=2.0, nod=0.0), speech_rate=1.0, state="listening",
              level=None, persona="default"),
    SpeechEvent(call_id=CALL, event="start", text="Hello", t=5.0),
    HumanRequested(call_id=CALL, t=6.0),
    Escalation(call_id=CALL, id=1, t=7.0, reason="furious", detail="level furious",
               anger_index=90.0, level="furious",
               context={"curve": [], "events": [], "transcript": []}),
    EscalationAcknowledged(call_id=CALL, id=1, acknowledged_by="alice",
                           acknowledged_at="2025-01-01T00:00:00+00:00"),
    Takeover(call_id=CALL, t=8.0, operator="alice", text="Hi"),
    Transcript(call_id=CALL, role="customer", text="Where is my order?", t_start=9.0,
               t_end=10.5),
    Unanswered(call_id=CALL, t=11.0, text="What is the meaning of life?", score=0.2),
]


# --- the README --------------------------------------------------------------------------

def _data_channel_paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^Data channel `agent`.*?(?=\n\n)", text, re.S | re.M)
    assert m, "README.md has no paragraph starting 'Data channel `agent`'"
    return m.group(0)


def _events_route_row() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^\| `GET /api/events` \|(.*)\|$", text, re.M)
    assert m, "README.md's routes table has no `GET /api/events` row"
    return m.group(1)


class _Shapes:
    """Reads the README's shorthand for JSON objects: `{"type": "speech", "event":
    "start"|"end", "text", "t"}` (a bare key: any value; `"a"|"b"`: one of these
    strings; a nested `{...}`: an object of those keys)."""

    TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[{}:,|])')

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = self.TOKEN.findall(text)
        self.i = 0

    def _next(self) -> str:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def obj(self) -> dict[str, Any]:
        assert self._next() == "{"
        out: dict[str, Any] = {}
        while True:
            key = self._next()
            assert key.startswith('"'), f"expected a key, got {key!r}"
            value: Any = None
            if self._peek() == ":":
                self._next()
                if self._peek() == "{":
                    value = self.obj()
                else:
                    value = {self._next().strip('"')}
                    while self._peek() == "|":
                        self._next()
                        value.add(self._next().strip('"'))
            out[key.strip('"')] = value
            sep = self._next()
            if sep == "}":
                return out
            assert sep == ",", f"expected , or }} in a README shape, got {sep!r}"


def documented_messages(paragraph: str) -> list[dict[str, Any]]:
    """Every top-level `{...}` of the paragraph, as parsed shapes."""
    shapes = []
    depth, start = 0, 0
    for i, ch in enumerate(paragraph):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                shapes.append(_Shapes(paragraph[start:i + 1]).obj())
    return shapes


def server_to_customer() -> dict[str, dict[str, Any]]:
    """The data channel's server → customer messages by type (the page's own `ping` and
    `human` are the customer's, not events)."""
    out = {}
    for shape in documented_messages(_data_channel_paragraph()):
        (kind,) = shape["type"]
        if kind not in ("ping", "human"):
            out[kind] = shape
    return out


def check_shape(shape: dict[str, Any], wire: dict[str, Any], where: str) -> None:
    assert set(wire) == set(shape), f"{where}: keys {sorted(wire)} != README {sorted(shape)}"
    for key, doc in shape.items():
        if isinstance(doc, dict):
            check_shape(doc, wire[key], f"{where}.{key}")
        elif isinstance(doc, set):
            assert wire[key] in doc, f"{where}.{key}: {wire[key]!r} not one of {doc}"


# --- the contract ------------------------------------------------------------------------

def test_every_event_type_has_a_sample() -> None:
    kinds = {c for c in vars(ev_mod).values()
             if isinstance(c, type) and issubclass(c, Event) and c is not Event}
    assert kinds == {type(s) for s in SAMPLES}


def test_the_readme_documents_speech_transcript_affect_and_cues_on_the_data_channel() -> None:
    assert set(server_to_customer()) == {"speech", "transcript", "affect", "cues"}


@pytest.mark.parametrize("event", [s for s in SAMPLES
                                   if s.type in ("speech", "transcript", "affect", "cues")],
                         ids=lambda e: type(e).__name__)
def test_data_channel_messages_are_as_documented(event: Event) -> None:
    wire = encode(event, for_customer=True)
    check_shape(server_to_customer()[event.type], wire, event.type)
    assert "call_id" not in wire
    # operators get the same message with its call
    assert encode(event) == {**wire, "call_id": CALL}


def test_speech_says_when_it_was_cut_short_only_then() -> None:
    cut = SpeechEvent(call_id=CALL, event="end", text="Hello", t=5.0, interrupted=True)
    assert encode(cut, for_customer=True)["interrupted"] is True
    assert "interrupted" not in encode(SpeechEvent(call_id=CALL, event="end", text="x", t=1))


def _ws_types() -> list[str]:
    """The types the routes table lists for `/api/events`: the backquoted words of the
    row that come before an opening parenthesis, a comma or the end."""
    row = _events_route_row().split("as JSON:", 1)[1]
    top = re.sub(r"\([^)]*\)", "", row)  # drop the parenthesised details
    return re.findall(r"`([a-z_]+)`", top)


# The avatar's cues (10 Hz) go to the customer's page only, never on the operators' bus.
CUSTOMER_ONLY = {"cues"}


def test_the_websocket_sends_exactly_the_documented_types() -> None:
    documented = _ws_types()
    assert len(documented) == len(set(documented))
    assert {s.type for s in SAMPLES} - CUSTOMER_ONLY == set(documented)
    for s in SAMPLES:
        wire = encode(s)
        assert wire["type"] == s.type and wire["call_id"] == CALL


def test_the_websocket_details_the_readme_names() -> None:
    row = _events_route_row()
    details = dict(re.findall(r"`([a-z_]+)` \(([^)]*)\)", row))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for s in SAMPLES:
        by_type.setdefault(s.type, []).append(encode(s))
    # `call` (started/ended), `event` (level, micro_expression), `customer` (`human_request`)
    assert {m["event"] for m in by_type["call"]} == set(details["call"].split("/"))
    assert {m["kind"] for m in by_type["event"]} == {
        k.strip() for k in details["event"].split(",")}
    assert {m["event"] for m in by_type["customer"]} == set(
        re.findall(r"`([a-z_]+)`", details["customer"]))
    # `escalation` (with `context`: curve, events, transcript)
    (esc,) = by_type["escalation"]
    ctx_doc = details["escalation"].split(":", 1)[1]
    assert set(esc["context"]) == {k.strip() for k in ctx_doc.split(",")}


def test_the_stored_timeline_form_has_no_type_and_no_call() -> None:
    entry = timeline_entry(SAMPLES[4])  # a micro-expression
    assert entry == {"t": 3.0, "kind": "micro_expression", "expression": "contempt",
                     "duration": 0.3, "peak": 0.7}
