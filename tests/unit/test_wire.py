"""Every event survives the trip to JSON and back (what crosses between workers):
examples are made from each class's own fields, so an event added later is covered."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal

import pytest

from avatar_agent.core import events as ev
from avatar_agent.core.wire import _BY_KEY, decode


def example(hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return typing.get_args(hint)[-1]
    if origin in (typing.Union, types.UnionType):
        return example(next(a for a in typing.get_args(hint) if a is not type(None)), name)
    if origin is dict or hint is dict:
        return {"curve": [{"t": 1.0}], "note": name}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint)
    return {bool: True, int: 7, float: 2.25, str: f"{name}-text"}[hint]


def build(cls: type[Any]) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: example(hints[f.name], f.name) for f in dataclasses.fields(cls)
                  if f.init and not f.name.startswith("_")})


@pytest.mark.parametrize("cls", sorted(set(_BY_KEY.values()), key=lambda c: c.__name__))
def test_round_trip(cls: type[ev.Event]) -> None:
    event = build(cls)
    assert event.call_id  # examples carry a call: it must survive too
    wire = json.loads(json.dumps(ev.encode(event)))
    assert decode(wire) == event


def test_speech_start_and_end_are_one_class_and_kinds_tell_events_apart() -> None:
    end = ev.SpeechEvent(call_id="c", event="end", text="hi", t=1.0, interrupted=True)
    assert decode(ev.encode(end)) == end
    level = ev.LevelChanged(call_id="c", t=1.0, level="annoyed", anger_index=50.0)
    assert type(decode(ev.encode(level))) is ev.LevelChanged


@pytest.mark.parametrize("bad", [{}, {"type": "nope"}, {"type": "affect", "t": 1.0},
                                 {"type": "takeover", "t": 1, "operator": "a", "text": "b",
                                  "extra": 1}])
def test_what_is_no_event_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        decode(bad)
