"""From raw model outputs to what the avatar and the operators act on.

Model outputs jitter from one window to the next; acting on them directly would make
the avatar twitch and the operator dashboard flash. So the outputs are smoothed in
time, and the customer's level only changes with hysteresis and a minimum dwell.
Pure: fed timestamps (seconds on the call's media clock) and values, no clock or I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from avatar_agent.core.config import AffectConfig, LevelConfig
from avatar_agent.core.events import AffectUpdate
from avatar_agent.core.levels import CALM, DISSATISFIED, FURIOUS, Level

Vector = npt.NDArray[np.float64]


class LevelTracker:
    """calm / dissatisfied / furious from the anger index (0-100).

    A level is entered when the index reaches its `enter` threshold and left only when
    the index falls below its lower `exit` threshold, so an index hovering around one
    threshold does not flip the level back and forth. On top of that a level, once
    entered, is held at least `min_dwell_s`; a change wanted earlier happens at the
    first update after the dwell, if it is still wanted then. A sharp rise may go from
    calm straight to furious. The first update may change the level at once.
    """

    def __init__(self, cfg: LevelConfig) -> None:
        self.cfg = cfg
        self._level = CALM
        self._since = -math.inf

    @property
    def level(self) -> str:
        return self._level

    @property
    def since(self) -> float:
        """Time the current level was entered (-inf before any change)."""
        return self._since

    def _target(self, x: float) -> Level:
        c = self.cfg
        if x >= c.furious_enter:
            return FURIOUS
        if self._level == FURIOUS and x >= c.furious_exit:
            return FURIOUS
        if self._level == CALM:
            return DISSATISFIED if x >= c.dissatisfied_enter else CALM
        # dissatisfied, or furious on its way down: the lower band's exit applies
        return DISSATISFIED if x >= c.dissatisfied_exit else CALM

    def update(self, t: float, anger_index: float) -> str:
        target = self._target(anger_index)
        if target != self._level and t - self._since >= self.cfg.min_dwell_s:
            self._level = target
            self._since = t
        return self._level


class Smoother:
    """Exponential smoothing of a vector sampled at irregular times.

    Each sample moves the state by alpha = 1 - exp(-dt / tau), so the response depends
    on elapsed time, not on how many samples arrived: for a steady input, two steps of
    0.5 s move the state exactly as far as one step of 1 s.
    tau = 0 passes samples through. A timestamp that goes backwards counts as dt = 0.
    """

    def __init__(self, time_constant_s: float) -> None:
        if time_constant_s < 0:
            raise ValueError("time_constant_s must not be negative")
        self.tau = time_constant_s
        self._value: Vector | None = None
        self._t = 0.0

    @property
    def value(self) -> Vector | None:
        return None if self._value is None else self._value.copy()

    def reset(self) -> None:
        self._value = None

    def update(self, t: float, x: Sequence[float] | npt.NDArray[np.floating[Any]]) -> Vector:
        v = np.asarray(x, np.float64).reshape(-1)
        if self._value is None:
            self._value, self._t = v.copy(), t
            return v
        if v.shape != self._value.shape:
            raise ValueError(f"expected {self._value.shape[0]} values, got {v.shape[0]}")
        dt = max(0.0, t - self._t)
        alpha = 1.0 if self.tau == 0 else 1.0 - math.exp(-dt / self.tau)
        self._value = self._value + alpha * (v - self._value)
        self._t = max(self._t, t)
        return self._value.copy()


@dataclass(frozen=True)
class AffectSnapshot:
    t: float
    arousal: float
    valence: float
    anger_index: float
    level: str
    emotion: str
    probs: dict[str, float]
    level_changed: bool

    def update(self, call_id: str) -> AffectUpdate:
        """The `affect` event of this snapshot (README: data channel), rounded for the wire."""
        return AffectUpdate(
            call_id=call_id,
            t=round(self.t, 3),
            arousal=round(self.arousal, 3),
            valence=round(self.valence, 3),
            anger_index=round(self.anger_index, 1),
            level=self.level,
            emotion=self.emotion,
        )


class AffectState:
    """One call's smoothed affect, anger index and level.

    anger_index = 100 x the smoothed probability of "angry", clipped to 0..100: the
    model's own confidence that the customer is angry, on the scale the level
    thresholds in the config use. The emotion is the argmax of the smoothed
    probabilities, so one odd window does not change it.
    """

    def __init__(self, cfg: AffectConfig) -> None:
        self.cfg = cfg
        self.levels = LevelTracker(cfg.level)
        self._smooth = Smoother(cfg.smoothing_s)
        self._emotions: tuple[str, ...] | None = None

    @property
    def level(self) -> str:
        return self.levels.level

    def update(
        self,
        t: float,
        arousal: float,
        valence: float,
        probs: Sequence[float],
        emotions: Sequence[str],
    ) -> AffectSnapshot:
        labels = tuple(emotions)
        if len(probs) != len(labels):
            raise ValueError(f"{len(probs)} probabilities for {len(labels)} emotions")
        if self._emotions is None:
            if "angry" not in labels:
                raise ValueError("the emotions must include 'angry' (it drives the anger index)")
            self._emotions = labels
        elif labels != self._emotions:
            raise ValueError(f"emotions changed from {self._emotions} to {labels}")
        s = self._smooth.update(t, [arousal, valence, *probs])
        p = s[2:]
        anger = float(np.clip(100.0 * p[labels.index("angry")], 0.0, 100.0))
        before = self.levels.level
        level = self.levels.update(t, anger)
        return AffectSnapshot(
            t=t,
            arousal=float(s[0]),
            valence=float(s[1]),
            anger_index=anger,
            level=level,
            emotion=labels[int(np.argmax(p))],
            probs={e: float(v) for e, v in zip(labels, p, strict=True)},
            level_changed=level != before,
        )
