"""Editing a persona file the way a person tuning it would: one cue value at a time.

`controls` describes every value of a persona file that a slider can set, grouped as
the file is (conversation states, customer levels, emotions, rules, anchors), with the
range and unit the schema in `behavior.py` gives it. `apply_changes` writes values
into the YAML text with a round trip that keeps comments, key order and layout, so a
saved file differs from the old one only in the values that moved.

Pure: text in, text out; no files, no clock.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from avatar_agent.avatar.behavior import (
    CUE_NAMES,
    CUE_RANGES,
    CUE_UNITS,
    STATES,
    Anchors,
    Cues,
    CueTargets,
    LevelCues,
    Persona,
    StateCues,
    parse_persona,
)
from avatar_agent.core.config import ConfigError
from avatar_agent.core.levels import LEVELS

# The groups and cues a page shows are the persona schema's own fields, so a cue or
# state added to the schema gets its controls without a change here.
SCHEMA_CUES = tuple(Cues.model_fields)
SCHEMA_STATES = tuple(StateCues.model_fields)
SCHEMA_LEVELS = tuple(LevelCues.model_fields)
STEP = 0.01  # slider resolution; values are rounded to 4 places when written
DEGREE_STEP = 0.1
COUNT_STEP = 0.5  # blinks per minute


class EditError(ValueError):
    """A change that cannot be made; `field` is the dotted path it names."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Change:
    """Set the value at a dotted path (`levels.furious.lean`), or remove it (None)."""

    path: str
    value: float | None


def _step(cue: str) -> float:
    if cue in ("head_tilt", "head_pitch"):
        return DEGREE_STEP
    return COUNT_STEP if cue == "blink_rate" else STEP


def _cue_control(cue: str, absolute: bool, value: float | None,
                 inherited: float | None) -> dict[str, Any]:
    lo, hi = CUE_RANGES[cue]
    if not absolute:  # an amount may take the cue across its whole range, either way
        lo, hi = lo - hi, hi - lo
    return {"cue": cue, "min": lo, "max": hi, "step": _step(cue), "unit": CUE_UNITS[cue],
            "value": value, "inherited": inherited}


def _group(path: str, title: str, kind: str, values: dict[str, float],
           inherited: dict[str, float] | None = None) -> dict[str, Any]:
    """`inherited`: what an unset cue of this group takes instead (a state's from idle)."""
    absolute = kind == "absolute"
    inherited = inherited or {}
    return {"path": path, "title": title, "kind": kind,
            "controls": [_cue_control(c, absolute, values.get(c), inherited.get(c))
                         for c in SCHEMA_CUES]}


def _when_text(when: Any) -> str:
    parts = [f"{k} {'/'.join(map(str, v)) if isinstance(v, list) else v}"
             for k, v in when.model_dump(exclude_none=True).items()]
    return ", ".join(parts) or "always"


def controls(persona: Persona) -> list[dict[str, Any]]:
    """Every settable value of the persona, grouped as its file is.

    `kind` says how a group's values act: `absolute` values are used as they are
    (each must lie in the cue's range), `amount` values are added. A control's `value`
    is None where the file leaves the cue to what comes before it; for a state that
    is `inherited` (idle's value, or the built-in neutral one for idle).
    """
    neutral = {name: getattr(CueTargets(), name) for name in CUE_NAMES}
    from_idle = {**neutral, **persona.states.idle.given()}
    groups = [_group(f"states.{s}", f"state: {s}", "absolute",
                     getattr(persona.states, s).given(), neutral if s == "idle" else from_idle)
              for s in SCHEMA_STATES]
    groups += [_group(f"levels.{lv}", f"customer {lv} (added)", "amount",
                      getattr(persona.levels, lv).given()) for lv in SCHEMA_LEVELS]
    groups += [_group(f"emotions.{e}", f"emotion {e} (added)", "amount", c.given())
               for e, c in persona.emotions.items()]
    for i, rule in enumerate(persona.rules):
        when = _when_text(rule.when)
        groups.append(_group(f"rules.{i}.set", f"rule {i + 1}: when {when}, set", "absolute",
                             rule.set.given()))
        groups.append(_group(f"rules.{i}.add", f"rule {i + 1}: when {when}, add", "amount",
                             rule.add.given()))
    anchor_controls = []
    for lv in Anchors.model_fields:
        meta = {type(m).__name__: m for m in Anchors.model_fields[lv].metadata}
        lo = float(getattr(meta.get("Ge"), "ge", 0.0))
        hi = float(getattr(meta.get("Le"), "le", 100.0))
        anchor_controls.append({"cue": lv, "min": lo, "max": hi, "step": 1.0,
                                "unit": "anger index", "value": getattr(persona.anchors, lv)})
    groups.append({"path": "anchors", "title": "anger index where each level applies in full",
                   "kind": "anchor", "controls": anchor_controls})
    return groups


_PATH_RE = re.compile(
    r"^(?:states\.(?P<state>\w+)|levels\.(?P<level>\w+)|emotions\.(?P<emotion>\w+)"
    r"|rules\.(?P<rule>\d+)\.(?P<op>set|add))\.(?P<cue>\w+)$|^anchors\.(?P<anchor>\w+)$"
)


def _check(change: Change, persona: Persona) -> tuple[str | int, ...]:
    """The change's path as keys into the YAML document; EditError names what is wrong."""
    m = _PATH_RE.match(change.path)
    if m is None:
        raise EditError(change.path, "not a value a persona file has")
    g = m.groupdict()
    value = change.value
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not math.isfinite(value)):
        raise EditError(change.path, "must be a number")
    if g["anchor"] is not None:
        if g["anchor"] not in LEVELS:
            raise EditError(change.path, f"anchors are {', '.join(LEVELS)}")
        if value is None:
            raise EditError(change.path, "an anchor cannot be removed")
        if not 0.0 <= value <= 100.0:
            raise EditError(change.path, f"must be between 0 and 100, got {value:g}")
        return ("anchors", g["anchor"])
    cue = g["cue"]
    if cue not in CUE_RANGES:
        raise EditError(change.path, f"unknown cue {cue!r}")
    lo, hi = CUE_RANGES[cue]
    if g["state"] is not None:
        if g["state"] not in STATES:
            raise EditError(change.path, f"states are {', '.join(STATES)}")
        keys: tuple[str | int, ...] = ("states", g["state"], cue)
        absolute = True
    elif g["level"] is not None:
        if g["level"] not in LEVELS:
            raise EditError(change.path, f"levels are {', '.join(LEVELS)}")
        keys, absolute = ("levels", g["level"], cue), False
    elif g["emotion"] is not None:
        if g["emotion"] not in persona.emotions:
            raise EditError(change.path, "no such emotion in this persona")
        keys, absolute = ("emotions", g["emotion"], cue), False
    else:
        i = int(g["rule"])
        if i >= len(persona.rules):
            raise EditError(change.path, f"this persona has {len(persona.rules)} rules")
        keys, absolute = ("rules", i, g["op"], cue), g["op"] == "set"
    if value is not None:
        if not absolute:
            lo, hi = lo - hi, hi - lo
        if not lo <= value <= hi:
            raise EditError(change.path, f"must be between {lo:g} and {hi:g}, got {value:g}")
    return keys


def _yaml() -> YAML:
    y = YAML()  # round-trip mode: comments, order and flow style survive
    y.indent(mapping=2, sequence=4, offset=2)
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long description
    return y


def _number(value: float) -> float | int:
    v = round(float(value), 4)
    return int(v) if v.is_integer() and abs(v) >= 1 else v


def apply_changes(text: str, changes: Iterable[Change], source: str = "<persona>") -> str:
    """The persona file's text with the changes made; comments and layout kept.

    Each change is checked against its cue's range first (EditError names the field),
    and the result against the whole schema, as `check-config` checks it (ConfigError).
    """
    persona = parse_persona(text, source)
    y = _yaml()
    try:
        doc = y.load(text)
    except YAMLError as exc:  # parse_persona took it, so this is a ruamel limitation
        raise EditError("", f"cannot edit this file: {exc}") from None
    if doc is None:
        doc = CommentedMap()
    for change in changes:
        keys = _check(change, persona)
        node: Any = doc
        for key in keys[:-1]:
            nxt = node[key] if isinstance(key, int) else node.get(key)
            if nxt is None:
                nxt = CommentedMap()
                node[key] = nxt
            node = nxt
        last = keys[-1]
        if change.value is None:
            if isinstance(node, dict):
                node.pop(last, None)
        else:
            node[last] = _number(change.value)
    out = io.StringIO()
    y.dump(doc, out)
    new_text = out.getvalue()
    parse_persona(new_text, source)  # the same schema check-config applies
    return new_text


def parse_changes(data: Any) -> list[Change]:
    """`[{"path": ..., "value": ...}, ...]` from a request body; EditError when malformed."""
    if not isinstance(data, list):
        raise EditError("changes", "must be a list of {path, value}")
    out = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise EditError("changes", "each change is an object with a string 'path'")
        value = item.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise EditError(item["path"], "must be a number")
        out.append(Change(item["path"], None if value is None else float(value)))
    return out


def issues_of(exc: ConfigError) -> list[dict[str, Any]]:
    """A ConfigError's problems as JSON for the page: field, line, message."""
    return [{"field": i.path, "line": i.line, "message": i.message} for i in exc.issues]


def changed_fields(changes: Sequence[Change]) -> list[str]:
    return [c.path for c in changes]
