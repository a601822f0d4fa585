"""Critically damped springs on a fixed time grid, one per cue channel.

Each channel follows ``x'' = w^2 (target - x) - 2 w x'``: the fastest approach to a
new target that never overshoots from rest. Steps use the exact solution of that
equation, so they are stable for any step length, and each step's change is
capped at the channel's top speed, so a sudden target jump is spread over frames.

The state only advances on a fixed grid of media time (``STEP_S``), whatever the
frame times asked for: frames at 30 fps, 25 fps, or with frames skipped all pass
through the same grid states, so the pose at time t depends on the target history
only, not on which frames were rendered. Between grid points the state is
extrapolated without being committed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
STEP_S = 1.0 / 120.0
# After a gap this long (a stalled call) the springs would have settled anyway:
# jump to the targets instead of integrating thousands of steps.
SETTLE_GAP_S = 8.0


class SpringBank:
    def __init__(self, omega: Sequence[float], max_speed: Sequence[float], start: Sequence[float]
                 ) -> None:
        self.omega = np.asarray(omega, dtype=np.float64)
        self.max_speed = np.asarray(max_speed, dtype=np.float64)
        self.x = np.asarray(start, dtype=np.float64).copy()
        self.v = np.zeros_like(self.x)
        self.target = self.x.copy()
        self.step_index = 0  # grid points passed; the state is that of step_index * STEP_S
        self._decay = np.exp(-self.omega * STEP_S)

    @property
    def t(self) -> float:
        return self.step_index * STEP_S

    def _step(self, x: F64, v: F64, h: float, decay: F64) -> tuple[F64, F64]:
        e = x - self.target
        b = v + self.omega * e
        new_e = (e + b * h) * decay
        new_v = (v - self.omega * b * h) * decay
        limit = self.max_speed * h
        dx = np.clip(new_e - e, -limit, limit)
        new_v = np.clip(new_v, -self.max_speed, self.max_speed)
        return x + dx, new_v

    def grid_steps_to(self, t: float) -> int:
        """How many grid steps lie between the state and time t (0 when t is in the past)."""
        return max(0, math.floor(t / STEP_S + 1e-9) - self.step_index)

    def step(self) -> None:
        self.x, self.v = self._step(self.x, self.v, STEP_S, self._decay)
        self.step_index += 1

    def settle_to(self, t: float) -> None:
        """Jump to rest at the targets, at the grid point of t."""
        self.x = self.target.copy()
        self.v[:] = 0.0
        self.step_index = max(self.step_index, math.floor(t / STEP_S + 1e-9))

    def value_at(self, t: float) -> F64:
        """The state extrapolated from the last grid point to t (t at or after it)."""
        h = t - self.t
        if h <= 1e-9:
            return self.x.copy()
        return self._step(self.x, self.v, h, np.exp(-self.omega * h))[0]
