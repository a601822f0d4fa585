"""Persona rules: the customer's affect and the conversation state → the avatar's cue targets.

A persona file (``configs/behaviors/*.yaml``) is written for people tuning the
avatar, not for programmers. It gives:

* ``states``: the cue values for each conversation state (idle, listening,
  speaking, apologising). ``idle`` lists every cue it changes from the built-in
  neutral values; the other states only list what differs from ``idle``.
* ``levels``: amounts *added* to those values for a dissatisfied or furious
  customer (calm adds nothing unless given).
* ``blend_by_anger_index``: when on, the added amounts follow the anger index
  smoothly between the ``anchors`` (the index where each level applies fully),
  within one anchor of the customer's current level.
* ``emotions``: amounts added when the customer's top emotion is this one.
* ``rules``: last word for specific situations, e.g. "when apologising to an
  upset customer, the mouth corners go down": ``when`` picks the situation,
  ``set`` fixes values, ``add`` adds to them.

Every result is clamped to the cue's range. ``cue_targets`` is pure; only
``load_persona`` and ``PersonaWatcher`` touch the file system.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from avatar_agent.core.levels import LEVELS, Level
from avatar_agent.core.section import Section
from avatar_agent.core.yamlconfig import ConfigError, parse_yaml_model, read_text

log = logging.getLogger(__name__)

STATES = ("idle", "listening", "speaking", "apologising")
ConversationState = Literal["idle", "listening", "speaking", "apologising"]
# Reply layers that are spoken in an apologetic register (speech/replies.py tags them).
APOLOGY_LAYERS = frozenset({"apology", "soothe"})
DEFAULT_BEHAVIOR = "configs/behaviors/support.yaml"


@dataclass(frozen=True, slots=True)
class CueTargets:
    """What the avatar's face and posture move toward; the animator smooths the way there."""

    lean: float = 0.0  # 0 upright .. 1 leaning fully toward the customer
    head_tilt: float = 0.0  # degrees of sideways head tilt (positive: clockwise on screen)
    head_pitch: float = 0.0  # degrees, positive lifts the chin
    nod: float = 0.0  # 0..1 strength of the small nods given while the customer talks
    gaze_hold: float = 0.7  # 0 gaze wanders off .. 1 eyes stay on the customer
    saccade_rate: float = 0.4  # gaze shifts per second
    brow_raise: float = 0.0  # -1 lowered .. 1 raised
    brow_frown: float = 0.0  # 0 .. 1 inner brow ends drawn down and together
    mouth_curve: float = 0.0  # -1 corners down .. 1 smile
    blink_rate: float = 15.0  # blinks per minute
    motion: float = 1.0  # scale of idle head sway and breathing (0 still .. 1.5 lively)
    speech_rate: float = 1.0  # factor on the speaking speed (0.92 = 8 % slower)


CUE_NAMES = tuple(f.name for f in fields(CueTargets))
# Valid range of each cue; persona values outside it are errors, sums are clamped.
CUE_RANGES: dict[str, tuple[float, float]] = {
    "lean": (0.0, 1.0),
    "head_tilt": (-8.0, 8.0),
    "head_pitch": (-8.0, 8.0),
    "nod": (0.0, 1.0),
    "gaze_hold": (0.0, 1.0),
    "saccade_rate": (0.0, 3.0),
    "brow_raise": (-1.0, 1.0),
    "brow_frown": (0.0, 1.0),
    "mouth_curve": (-1.0, 1.0),
    "blink_rate": (0.0, 40.0),
    "motion": (0.0, 1.5),
    "speech_rate": (0.7, 1.3),
}
# Units shown beside each cue's control on the tuning page.
CUE_UNITS: dict[str, str] = {
    "lean": "0 upright .. 1 leaning in",
    "head_tilt": "degrees",
    "head_pitch": "degrees",
    "nod": "strength 0..1",
    "gaze_hold": "0 wanders .. 1 holds",
    "saccade_rate": "glances/s",
    "brow_raise": "-1 lowered .. 1 raised",
    "brow_frown": "0..1",
    "mouth_curve": "-1 down .. 1 smile",
    "blink_rate": "blinks/min",
    "motion": "0 still .. 1.5 lively",
    "speech_rate": "x speaking speed",
}


class Cues(Section):
    """A partial set of cue values; a missing cue is left as it was."""

    lean: float | None = None
    head_tilt: float | None = None
    head_pitch: float | None = None
    nod: float | None = None
    gaze_hold: float | None = None
    saccade_rate: float | None = None
    brow_raise: float | None = None
    brow_frown: float | None = None
    mouth_curve: float | None = None
    blink_rate: float | None = None
    motion: float | None = None
    speech_rate: float | None = None

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class AbsoluteCues(Cues):
    """Cue values that are used as they are, so each must lie in its range."""

    @model_validator(mode="after")
    def _in_range(self) -> AbsoluteCues:
        for name, value in self.given().items():
            lo, hi = CUE_RANGES[name]
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
        return self


class AmountCues(Cues):
    """Amounts added to a cue; one can at most cross the cue's whole range."""

    @model_validator(mode="after")
    def _within_span(self) -> AmountCues:
        for name, value in self.given().items():
            lo, hi = CUE_RANGES[name]
            if abs(value) > hi - lo:
                raise ValueError(f"{name} may add between {lo - hi:g} and {hi - lo:g}, "
                                 f"got {value:g}")
        return self


class StateCues(Section):
    idle: AbsoluteCues = AbsoluteCues()
    listening: AbsoluteCues = AbsoluteCues()
    speaking: AbsoluteCues = AbsoluteCues()
    apologising: AbsoluteCues = AbsoluteCues()


class LevelCues(Section):
    calm: AmountCues = AmountCues()
    dissatisfied: AmountCues = AmountCues()
    furious: AmountCues = AmountCues()


class Anchors(Section):
    """The anger index (0-100) at which each level's amounts apply in full."""

    calm: float = Field(15.0, ge=0, le=100)
    dissatisfied: float = Field(50.0, ge=0, le=100)
    furious: float = Field(85.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Anchors:
        if not self.calm < self.dissatisfied < self.furious:
            raise ValueError("anchors must rise: calm < dissatisfied < furious")
        return self


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class When(Section):
    """A situation; every condition given must hold (a list means any of them)."""

    level: list[Level] | None = None
    state: list[Literal["idle", "listening", "speaking", "apologising"]] | None = None
    emotion: list[str] | None = None
    anger_at_least: float | None = Field(None, ge=0, le=100)

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: _as_list(v) if k != "anger_at_least" else v for k, v in data.items()}
        return data


class Rule(Section):
    when: When
    set: AbsoluteCues = AbsoluteCues()
    add: AmountCues = AmountCues()


class Persona(Section):
    name: str = "neutral"
    description: str = ""
    states: StateCues = StateCues()
    levels: LevelCues = LevelCues()
    blend_by_anger_index: bool = False
    anchors: Anchors = Anchors()
    emotions: dict[str, AmountCues] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AffectInput:
    """The customer's state as the rules read it; the defaults are a calm customer."""

    level: str = "calm"
    anger_index: float = 0.0
    arousal: float = 0.0
    valence: float = 0.0
    emotion: str = "neutral"

    @classmethod
    def of(cls, snapshot: Any | None) -> AffectInput:
        """From an AffectSnapshot (or anything with its fields); None → calm."""
        if snapshot is None:
            return cls()
        return cls(str(snapshot.level), float(snapshot.anger_index), float(snapshot.arousal),
                   float(snapshot.valence), str(snapshot.emotion))


def conversation_state(
    avatar_speaking: bool,
    layer: str | None,
    customer_speaking: bool,
    since_customer_spoke: float | None = None,
    listen_hold_s: float = 1.0,
) -> ConversationState:
    """Who holds the floor. The avatar's own speech wins (barge-in stops it first);
    a short pause of the customer still counts as listening, as a person waits for more."""
    if avatar_speaking:
        return "apologising" if layer in APOLOGY_LAYERS else "speaking"
    if customer_speaking:
        return "listening"
    if since_customer_spoke is not None and since_customer_spoke < listen_hold_s:
        return "listening"
    return "idle"


def _level_amounts(persona: Persona, affect: AffectInput) -> dict[str, float]:
    levels = persona.levels
    amounts: dict[str, dict[str, float]] = {
        name: getattr(levels, name).given() for name in LEVELS
    }
    level = affect.level if affect.level in LEVELS else "calm"
    if not persona.blend_by_anger_index:
        return amounts[level]
    anchors = [getattr(persona.anchors, name) for name in LEVELS]
    i = LEVELS.index(level)
    # The index is held within one anchor of the current level, so the level's
    # hysteresis still decides which amounts dominate.
    x = min(max(affect.anger_index, anchors[max(i - 1, 0)]), anchors[min(i + 1, 2)])
    if x <= anchors[0]:
        return amounts["calm"]
    if x >= anchors[2]:
        return amounts["furious"]
    j = 0 if x < anchors[1] else 1
    f = (x - anchors[j]) / (anchors[j + 1] - anchors[j])
    a, b = amounts[LEVELS[j]], amounts[LEVELS[j + 1]]
    return {k: (1 - f) * a.get(k, 0.0) + f * b.get(k, 0.0) for k in set(a) | set(b)}


def _matches(when: When, affect: AffectInput, state: str) -> bool:
    return (
        (when.level is None or affect.level in when.level)
        and (when.state is None or state in when.state)
        and (when.emotion is None or affect.emotion in when.emotion)
        and (when.anger_at_least is None or affect.anger_index >= when.anger_at_least)
    )


def cue_targets(persona: Persona, affect: AffectInput | None, state: str) -> CueTargets:
    """The persona's cue targets for this customer and conversation state."""
    affect = affect or AffectInput()
    if state not in STATES:
        raise ValueError(f"unknown conversation state {state!r}")
    values = {name: getattr(CueTargets(), name) for name in CUE_NAMES}
    values.update(persona.states.idle.given())
    values.update(getattr(persona.states, state).given())
    for name, amount in _level_amounts(persona, affect).items():
        values[name] += amount
    emotion = persona.emotions.get(affect.emotion)
    if emotion is not None:
        for name, amount in emotion.given().items():
            values[name] += amount
    for rule in persona.rules:
        if _matches(rule.when, affect, state):
            values.update(rule.set.given())
            for name, amount in rule.add.given().items():
                values[name] += amount
    clamped = {k: min(max(v, CUE_RANGES[k][0]), CUE_RANGES[k][1]) for k, v in values.items()}
    return replace(CueTargets(), **clamped)


# ------------------------------------------------------------------ files


def looks_like_persona(path: Path, data: Any) -> bool:
    """Behaviour files live under a `behaviors` folder or start with persona keys."""
    if "behaviors" in path.parts:
        return True
    return isinstance(data, dict) and ("states" in data or "levels" in data)


def parse_persona(text: str, source: str = "<string>") -> Persona:
    return parse_yaml_model(Persona, text, source)


def load_persona(path: Path) -> Persona:
    """Read and validate a persona file; ConfigError lists every problem with its line."""
    return parse_persona(read_text(path), str(path))


class PersonaWatcher:
    """Reloads a persona when its file changes; keeps the last good one when it breaks.

    Pure apart from `os.stat` and reading the file: the caller decides how often to
    poll. A file is reloaded when its modification time or size changes.
    """

    def __init__(self, path: Path, fallback: Persona | None = None) -> None:
        self.path = path
        self.persona = fallback or Persona()
        self.error: str | None = None
        self.reloads = 0
        self._seen: tuple[int, int] | None = None
        self.poll()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def poll(self) -> bool:
        """Reload if the file changed; True when a new persona was taken."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        if stamp is None:
            self.error = f"persona file {self.path} is missing; keeping {self.persona.name!r}"
            log.error("%s", self.error)
            return False
        try:
            persona = load_persona(self.path)
        except ConfigError as exc:
            self.error = str(exc)
            log.error("persona not reloaded, keeping %r: %s", self.persona.name, exc)
            return False
        self.persona, self.error = persona, None
        self.reloads += 1
        log.info("persona %r loaded from %s", persona.name, self.path)
        return True
