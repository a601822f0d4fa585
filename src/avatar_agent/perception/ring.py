"""Bounded per-call store of timestamped feature rows: the next stage reads windows from it.

Fixed capacity: when full, the oldest row is overwritten. Pure, no clock or asyncio.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class FeatureRing:
    def __init__(self, width: int, capacity: int) -> None:
        if width <= 0 or capacity <= 0:
            raise ValueError("width and capacity must be positive")
        self.width = width
        self.capacity = capacity
        self._t = np.zeros(capacity, np.float64)
        self._rows = np.zeros((capacity, width), np.float32)
        self._next = 0
        self._count = 0
        self.overwritten = 0

    def __len__(self) -> int:
        return self._count

    def append(self, t: float, row: npt.NDArray[np.float32]) -> None:
        r = np.asarray(row, np.float32)
        if r.shape != (self.width,):
            raise ValueError(f"expected a row of {self.width}, got shape {r.shape}")
        if self._count == self.capacity:
            self.overwritten += 1
        else:
            self._count += 1
        self._t[self._next] = t
        self._rows[self._next] = r
        self._next = (self._next + 1) % self.capacity

    def _order(self) -> npt.NDArray[np.intp]:
        start = (self._next - self._count) % self.capacity
        return (start + np.arange(self._count)) % self.capacity

    def window(self, since: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """Timestamps and rows with t >= since, oldest first (copies)."""
        idx = self._order()
        keep = idx[self._t[idx] >= since]
        return self._t[keep].copy(), self._rows[keep].copy()

    def latest(self) -> tuple[float, npt.NDArray[np.float32]] | None:
        if self._count == 0:
            return None
        i = (self._next - 1) % self.capacity
        return float(self._t[i]), self._rows[i].copy()
