"""Idle life of the avatar: blinks, breathing, head sway and small gaze shifts.

Everything is a pure function of the media-clock time and the seed. Random
events (blinks, gaze targets) are drawn from a seeded generator in time order
and cached, so the pose at time t never depends on which frames were asked for
before it: skipped frames and replays give identical poses.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

BLINK_GAP = (2.0, 6.0)  # seconds between blink starts
BLINK_LENGTH = (0.13, 0.2)  # seconds from lid start to lid fully up again
BLINK_CLOSE_SHARE = 0.35  # lids fall faster than they rise
BLINK_HOLD = 0.03  # fully shut long enough that a 30 fps camera sees it
GAZE_GAP = (1.2, 4.5)  # seconds between gaze shifts
GAZE_SHIFT_TIME = 0.12  # a small saccade, eased so frames show no jump
GAZE_RANGE = (0.3, 0.18)  # idle gaze stays near the viewer (x, y)
BREATH_HZ = (0.22, 0.28)
# (amplitude in degrees, frequency in Hz) of the layered sines per head axis;
# incommensurate frequencies keep the sway from visibly repeating.
_SWAY = {
    "yaw": ((1.4, 0.071), (0.7, 0.163), (0.3, 0.41)),
    "pitch": ((0.8, 0.057), (0.45, 0.137), (0.2, 0.33)),
    "roll": ((0.7, 0.049), (0.35, 0.121), (0.15, 0.29)),
}


@dataclass(frozen=True, slots=True)
class Pose:
    mouth_open: float = 0.0  # 0..1
    blink: float = 0.0  # 0 = eyes open, 1 = closed
    head_yaw: float = 0.0  # degrees, positive turns toward the viewer's left
    head_pitch: float = 0.0  # degrees, positive lifts the chin
    head_roll: float = 0.0  # degrees, positive tilts the head clockwise on screen
    gaze_x: float = 0.0  # -1..1, eyes toward the viewer's left..right
    gaze_y: float = 0.0  # -1..1, eyes up..down
    breath: float = 0.0  # -1..1, shoulders/chest rise


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


class _EventTrack:
    """Seeded event times (and per-event values) extended lazily as time advances."""

    def __init__(self, rng: np.random.Generator, gap: tuple[float, float], first: float) -> None:
        self._rng = rng
        self._gap = gap
        self.times: list[float] = [first]
        self.values: list[tuple[float, float]] = [self._draw()]

    def _draw(self) -> tuple[float, float]:
        return float(self._rng.uniform(0.0, 1.0)), float(self._rng.uniform(0.0, 1.0))

    def extend_to(self, t: float) -> None:
        while self.times[-1] <= t:
            self.times.append(self.times[-1] + float(self._rng.uniform(*self._gap)))
            self.values.append(self._draw())

    def last_before(self, t: float) -> int:
        """Index of the latest event starting at or before t, or -1."""
        self.extend_to(t)
        return bisect.bisect_right(self.times, t) - 1


class IdleAnimator:
    def __init__(self, seed: int = 0) -> None:
        root = np.random.default_rng(seed)
        blink_rng, gaze_rng, phase_rng = (np.random.default_rng(s) for s in root.spawn(3))
        self._blinks = _EventTrack(blink_rng, BLINK_GAP, float(blink_rng.uniform(0.8, 3.0)))
        self._gazes = _EventTrack(gaze_rng, GAZE_GAP, float(gaze_rng.uniform(0.5, 2.5)))
        self._breath_hz = float(phase_rng.uniform(*BREATH_HZ))
        self._breath_phase = float(phase_rng.uniform(0.0, 2.0 * math.pi))
        self._sway_phase = {
            axis: tuple(float(p) for p in phase_rng.uniform(0.0, 2.0 * math.pi, len(terms)))
            for axis, terms in _SWAY.items()
        }

    def pose(self, t: float, mouth_open: float = 0.0) -> Pose:
        gaze_x, gaze_y = self._gaze(t)
        return Pose(
            mouth_open=min(1.0, max(0.0, float(mouth_open))),
            blink=self._blink(t),
            head_yaw=self._sway("yaw", t),
            head_pitch=self._sway("pitch", t),
            head_roll=self._sway("roll", t),
            gaze_x=gaze_x,
            gaze_y=gaze_y,
            breath=math.sin(2.0 * math.pi * self._breath_hz * t + self._breath_phase),
        )

    def _blink(self, t: float) -> float:
        i = self._blinks.last_before(t)
        if i < 0:
            return 0.0
        length = BLINK_LENGTH[0] + (BLINK_LENGTH[1] - BLINK_LENGTH[0]) * self._blinks.values[i][0]
        x = t - self._blinks.times[i]
        close = (length - BLINK_HOLD) * BLINK_CLOSE_SHARE
        if x < close:
            return _smoothstep(x / close)
        if x < close + BLINK_HOLD:
            return 1.0
        return 1.0 - _smoothstep((x - close - BLINK_HOLD) / (length - close - BLINK_HOLD))

    def _gaze_target(self, i: int) -> tuple[float, float]:
        if i < 0:
            return 0.0, 0.0
        u, v = self._gazes.values[i]
        if i % 2 == 1:
            # Every other shift comes back to the viewer: an agent keeps eye contact.
            return 0.0, 0.0
        return (2.0 * u - 1.0) * GAZE_RANGE[0], (2.0 * v - 1.0) * GAZE_RANGE[1]

    def _gaze(self, t: float) -> tuple[float, float]:
        i = self._gazes.last_before(t)
        if i < 0:
            return 0.0, 0.0
        prev_x, prev_y = self._gaze_target(i - 1)
        x, y = self._gaze_target(i)
        k = _smoothstep((t - self._gazes.times[i]) / GAZE_SHIFT_TIME)
        return prev_x + (x - prev_x) * k, prev_y + (y - prev_y) * k

    def _sway(self, axis: str, t: float) -> float:
        return sum(
            amp * math.sin(2.0 * math.pi * hz * t + phase)
            for (amp, hz), phase in zip(_SWAY[axis], self._sway_phase[axis], strict=True)
        )
