"""Events back from their JSON: what another worker published reaches this one's
subscribers as the same typed event (`decode(encode(e)) == e`).

`core.events.encode` stays the one serialiser; this is its inverse, built from the
event classes themselves, so an event added there travels between workers as it is.
Several classes share a `type` (`call`, `event`, `customer`): their fixed `event` or
`kind` field tells them apart.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from avatar_agent.core import events as ev

_WIRE_TO_FIELD = {"raise": "raise_"}
_DISCRIMINATORS = ("event", "kind")


def _classes() -> dict[tuple[str, str | None], type[ev.Event]]:
    out: dict[tuple[str, str | None], type[ev.Event]] = {}
    # the module's names, not Event.__subclasses__(): `slots=True` makes each dataclass
    # anew, and the class it replaced would still be listed there
    for cls in vars(ev).values():
        if not (isinstance(cls, type) and issubclass(cls, ev.Event) and cls.type):
            continue
        fixed = None
        for f in dataclasses.fields(cls):
            if f.name in _DISCRIMINATORS and f.default is not dataclasses.MISSING:
                fixed = str(f.default)
        out[(cls.type, fixed)] = cls
    return out


_BY_KEY = _classes()


def _build(cls: type[Any], obj: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in obj.items():
        name = _WIRE_TO_FIELD.get(key, key)
        hint = hints.get(name)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _build(hint, value)
        kwargs[name] = value
    return cls(**kwargs)


def decode(obj: dict[str, Any]) -> ev.Event:
    """The event a JSON object from `encode` stands for; ValueError if none does."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ValueError("not an event: no type")
    for key in ((kind, obj.get("event")), (kind, obj.get("kind")), (kind, None)):
        cls = _BY_KEY.get(key)
        if cls is not None:
            body = {k: v for k, v in obj.items() if k != "type"}
            try:
                event: ev.Event = _build(cls, body)
            except TypeError as exc:
                raise ValueError(f"bad {kind} event: {exc}") from None
            return event
    raise ValueError(f"unknown event type {kind!r}")
