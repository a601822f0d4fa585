"""A scripted affect sequence that stands in for the model.

For demos, tuning a persona, and tests of everything downstream of affect (avatar
cues, escalation, the operator dashboard): with `affect.script` set, a consenting
call's affect comes from this timed list instead of the model, and then takes exactly
the model's path (smoothing, level hysteresis, data channel, event bus, stored curve).

The file is a YAML list of steps; each holds until the next one:

    - {at: 0, anger_index: 10}
    - {at: 4, anger_index: 85, emotion: angry}
    - {at: 12, anger_index: 20, arousal: 0.3, valence: 0.2, emotion: calm}

`at` is seconds after the call's affect loop starts. Arousal and valence default to
values that follow the anger index; the emotion defaults to angry above 50, else
neutral. Pure: no clock, no I/O except `load_script`.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectOutput
from avatar_agent.core.section import Section


class ScriptStep(Section):
    at: float = Field(ge=0)
    anger_index: float = Field(ge=0, le=100)
    arousal: float | None = Field(None, ge=0, le=1)
    valence: float | None = Field(None, ge=-1, le=1)
    emotion: str | None = None

    @field_validator("emotion")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in EMOTIONS:
            raise ValueError(f"unknown emotion {v!r}; one of {', '.join(EMOTIONS)}")
        return v


def _output(step: ScriptStep) -> AffectOutput:
    p_angry = step.anger_index / 100.0
    emotion = step.emotion or ("angry" if p_angry > 0.5 else "neutral")
    rest = 1.0 - p_angry
    probs = [0.0] * len(EMOTIONS)
    probs[EMOTIONS.index("angry")] = p_angry
    if emotion != "angry":
        # Most of what anger leaves goes to the named emotion, the rest spread thinly,
        # so the argmax is the scripted emotion whenever it can be.
        others = [i for i, e in enumerate(EMOTIONS) if e not in ("angry", emotion)]
        probs[EMOTIONS.index(emotion)] = 0.8 * rest
        for i in others:
            probs[i] = 0.2 * rest / len(others)
    else:
        others = [i for i, e in enumerate(EMOTIONS) if e != "angry"]
        for i in others:
            probs[i] = rest / len(others)
    arousal = step.arousal if step.arousal is not None else 0.2 + 0.7 * p_angry
    valence = step.valence if step.valence is not None else max(-1.0, 0.3 - 1.1 * p_angry)
    return AffectOutput(arousal=arousal, valence=valence, probs=tuple(probs))


class AffectScript:
    def __init__(self, steps: list[ScriptStep]) -> None:
        if not steps:
            raise ValueError("an affect script needs at least one step")
        times = [s.at for s in steps]
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError(f"step times must increase, got {times}")
        self._times = times
        self._outputs = [_output(s) for s in steps]

    def output_at(self, t: float) -> AffectOutput:
        """The scripted output at t seconds; before the first step, the first step's."""
        i = max(0, bisect.bisect_right(self._times, t) - 1)
        return self._outputs[i]


def parse_script(text: str, source: str = "<string>") -> AffectScript:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{source}: an affect script is a list of steps like "
                         "'- {at: 0, anger_index: 10}'")
    steps = []
    for i, item in enumerate(data):
        try:
            steps.append(ScriptStep.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'step'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{source}: step {i + 1}: {problems}") from exc
    try:
        return AffectScript(steps)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def load_script(path: Path) -> AffectScript:
    if not path.is_file():
        raise FileNotFoundError(f"affect script not found: {path}")
    return parse_script(path.read_text(encoding="utf-8"), str(path))
