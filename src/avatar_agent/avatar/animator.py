"""The avatar's pose per frame: idle life, and body language from the persona's cues.

``IdleAnimator`` is a pure function of the media-clock time and the seed. Random
events (blinks, gaze targets) are drawn from a seeded generator in time order
and cached, so the pose at time t never depends on which frames were asked for
before it: skipped frames and replays give identical poses.

``CueAnimator`` adds the persona's cue targets on top (lean, tilt, nods, brows,
mouth corners, gaze hold, blink and saccade rates, motion) through critically damped
springs (avatar/spring.py). Springs need frames in time order: they advance on a
fixed 120 Hz grid of media time, so skipped frames are integrated through and the
pose at t depends on the target history, not on which frames were rendered; a
time earlier than the last one asked is answered from the current state.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from avatar_agent.avatar.behavior import CUE_NAMES, CueTargets
from avatar_agent.avatar.spring import SETTLE_GAP_S, STEP_S, SpringBank

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
    lean: float = 0.0  # 0..1, toward the viewer: the picture comes slightly closer
    brow_raise: float = 0.0  # -1..1, brows lowered..raised
    brow_frown: float = 0.0  # 0..1, inner brow ends drawn down and together
    mouth_curve: float = 0.0  # -1..1, corners down..up (smile)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def blink_curve(x: float, length: float) -> float:
    """Lid closure (0 open .. 1 shut) x seconds into a blink lasting `length` seconds."""
    if not 0.0 <= x < length:
        return 0.0
    close = (length - BLINK_HOLD) * BLINK_CLOSE_SHARE
    if x < close:
        return _smoothstep(x / close)
    if x < close + BLINK_HOLD:
        return 1.0
    return 1.0 - _smoothstep((x - close - BLINK_HOLD) / (length - close - BLINK_HOLD))


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
        return blink_curve(t - self._blinks.times[i], length)

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


# Per cue channel: spring rate (1/s; ~4.7/w seconds to settle within 5 %) and top
# speed (units/s), which bounds the change from one frame to the next.
_CHANNELS: dict[str, tuple[float, float]] = {
    "lean": (3.0, 0.8),
    "head_tilt": (3.5, 6.0),
    "head_pitch": (3.5, 6.0),
    "nod": (3.0, 1.0),
    "gaze_hold": (4.0, 2.0),
    "saccade_rate": (4.0, 3.0),
    "brow_raise": (6.0, 2.5),
    "brow_frown": (6.0, 2.0),
    "mouth_curve": (6.0, 2.5),
    "blink_rate": (3.0, 30.0),
    "motion": (3.0, 1.0),
    "speech_rate": (5.0, 1.0),
}
_IDX = {name: i for i, name in enumerate(CUE_NAMES)}
NOD_DEG = 4.0  # chin drop of a full-strength nod
NOD_LENGTH = 0.7  # seconds, down and back up
NOD_GAP = (1.6, 3.0)  # seconds between nod starts
MICRO_SACCADE = 0.04  # gaze jitter around the customer's eyes while holding gaze
# Wide-open visemes keep their shape: the corner curve fades a little as the jaw opens.
CURVE_WHILE_OPEN = 0.4


class CueAnimator:
    """Pose per frame from cue targets plus idle life; frames must come in time order."""

    def __init__(self, seed: int = 0, targets: CueTargets | None = None) -> None:
        self._idle = IdleAnimator(seed)
        start = targets or CueTargets()
        self._springs = SpringBank(
            [_CHANNELS[n][0] for n in CUE_NAMES], [_CHANNELS[n][1] for n in CUE_NAMES],
            [getattr(start, n) for n in CUE_NAMES],
        )
        self._targets = start
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0E5]))
        self._blink_at = self._blink_next = math.inf
        self._nod_at = self._nod_next = math.inf
        self._saccade_at = self._saccade_next = math.inf
        self._gaze_from = self._gaze_to = (0.0, 0.0)
        self._schedule(0.0)

    @property
    def targets(self) -> CueTargets:
        return self._targets

    def set_targets(self, targets: CueTargets) -> None:
        """New targets; the pose moves toward them from the next grid step on."""
        self._targets = targets
        self._springs.target = np.array([getattr(targets, n) for n in CUE_NAMES])

    def settle(self, t: float = 0.0) -> None:
        """Jump to rest at the targets (previews, tests)."""
        self._springs.settle_to(t)
        self._schedule(self._springs.t)

    def cue(self, name: str) -> float:
        """The smoothed value of one cue channel at the last grid step."""
        return float(self._springs.x[_IDX[name]])

    # --- event scheduling ---------------------------------------------------------

    def _gap(self, per_s: float, lo: float = 0.5, hi: float = 1.5) -> float:
        return float(self._rng.uniform(lo, hi)) / per_s

    def _schedule(self, now: float) -> None:
        """Give each idle event track a next time if it has none and its rate allows one."""
        x = self._springs.x
        blink_per_s = x[_IDX["blink_rate"]] / 60.0
        if self._blink_next == math.inf and blink_per_s > 0.01:
            self._blink_next = now + max(1.0, self._gap(blink_per_s))
        if self._saccade_next == math.inf and x[_IDX["saccade_rate"]] > 0.02:
            self._saccade_next = now + max(0.25, self._gap(x[_IDX["saccade_rate"]]))
        if self._nod_next == math.inf and x[_IDX["nod"]] > 0.05:
            self._nod_next = now + float(self._rng.uniform(0.2, 0.8))

    def _fire(self, now: float) -> None:
        """Start the events due at grid time `now` and draw the ones after them."""
        x = self._springs.x
        if self._blink_next <= now:
            self._blink_at = self._blink_next
            rate = x[_IDX["blink_rate"]] / 60.0
            self._blink_next = self._blink_at + max(1.0, self._gap(rate)) if rate > 0.01 \
                else math.inf
        if self._saccade_next <= now:
            self._saccade_at = self._saccade_next
            self._gaze_from = self._gaze_at(now)
            self._gaze_to = self._saccade_target(x[_IDX["gaze_hold"]])
            rate = x[_IDX["saccade_rate"]]
            self._saccade_next = self._saccade_at + max(0.25, self._gap(rate)) \
                if rate > 0.02 else math.inf
        if self._nod_next <= now:
            self._nod_at = self._nod_next
            self._nod_next = self._nod_at + float(self._rng.uniform(*NOD_GAP)) \
                if x[_IDX["nod"]] > 0.05 else math.inf

    def _saccade_target(self, hold: float) -> tuple[float, float]:
        """Back to the customer's eyes, or a glance away that a steady gaze makes rare and small."""
        u, v, w = (float(a) for a in self._rng.uniform(-1.0, 1.0, 3))
        away = self._gaze_to != (0.0, 0.0) and abs(self._gaze_to[0]) > MICRO_SACCADE
        if away or (w + 1.0) / 2.0 < hold:
            return u * MICRO_SACCADE, v * MICRO_SACCADE * 0.6
        reach = max(0.15, 1.15 - hold)
        return u * GAZE_RANGE[0] * reach, v * GAZE_RANGE[1] * reach

    def _advance(self, t: float) -> None:
        springs = self._springs
        n = springs.grid_steps_to(t)
        if n * STEP_S > SETTLE_GAP_S:
            springs.settle_to(t - STEP_S)
            self._blink_next = self._saccade_next = self._nod_next = math.inf
            self._schedule(springs.t)
            n = springs.grid_steps_to(t)
        for _ in range(n):
            springs.step()
            self._fire(springs.t)
            self._schedule(springs.t)

    # --- pose -----------------------------------------------------------------------

    def _gaze_at(self, t: float) -> tuple[float, float]:
        k = _smoothstep((t - self._saccade_at) / GAZE_SHIFT_TIME) if t >= self._saccade_at else 0.0
        (x0, y0), (x1, y1) = self._gaze_from, self._gaze_to
        return x0 + (x1 - x0) * k, y0 + (y1 - y0) * k

    def _blink(self, t: float) -> float:
        start = self._blink_next if self._blink_next <= t else self._blink_at
        return blink_curve(t - start, (BLINK_LENGTH[0] + BLINK_LENGTH[1]) / 2.0)

    def _nod(self, t: float, strength: float) -> float:
        x = t - self._nod_at
        if not 0.0 <= x < NOD_LENGTH:
            return 0.0
        return -NOD_DEG * max(0.0, strength) * math.sin(math.pi * x / NOD_LENGTH) ** 2

    def pose(self, t: float, mouth_open: float = 0.0) -> Pose:
        self._advance(t)
        t = max(t, self._springs.t)
        c = self._springs.value_at(t)
        motion = max(0.0, float(c[_IDX["motion"]]))
        mouth = min(1.0, max(0.0, float(mouth_open)))
        gaze_x, gaze_y = self._gaze_at(t)
        curve = float(c[_IDX["mouth_curve"]]) * (1.0 - CURVE_WHILE_OPEN * mouth)
        breath_scale = min(1.0, 0.25 + 0.75 * motion)
        idle = self._idle
        return Pose(
            mouth_open=mouth,
            blink=self._blink(t),
            head_yaw=idle._sway("yaw", t) * motion,
            head_pitch=idle._sway("pitch", t) * motion + float(c[_IDX["head_pitch"]])
            + self._nod(t, float(c[_IDX["nod"]])),
            head_roll=idle._sway("roll", t) * motion + float(c[_IDX["head_tilt"]]),
            gaze_x=gaze_x,
            gaze_y=gaze_y,
            breath=breath_scale * math.sin(2.0 * math.pi * idle._breath_hz * t
                                           + idle._breath_phase),
            lean=min(1.0, max(0.0, float(c[_IDX["lean"]]))),
            brow_raise=min(1.0, max(-1.0, float(c[_IDX["brow_raise"]]))),
            brow_frown=min(1.0, max(0.0, float(c[_IDX["brow_frown"]]))),
            mouth_curve=min(1.0, max(-1.0, curve)),
        )
