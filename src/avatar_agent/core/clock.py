"""Time for a call's loops: one injected clock, one `Ticker`, no hand-written sleeps.

A live server runs on `LoopClock` (the event loop's monotonic time). A test runs a
whole call on `VirtualClock`, whose time moves only when the test says so: every
loop wakes in the order of its deadlines, so a call is driven frame by frame,
in-process and without a fixed sleep.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic clock."""

    async def sleep_until(self, t: float) -> None:
        """Return once `now() >= t` (at once when it already is)."""


class LoopClock:
    """The running event loop's clock: what a live call uses."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - self.now()))


class VirtualClock:
    """Time that moves only in `advance`: sleepers wake in deadline order.

    Work the loops hand to an executor should run inline in such a test (see
    `InlineExecutor`), so it takes no virtual time and the call is deterministic.
    """

    # Event-loop turns given to woken tasks before time moves on: enough for a
    # sleeper to run to its next await, through a few futures and queues.
    SETTLE_TURNS = 30

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, t: float) -> None:
        if t <= self._now:
            await asyncio.sleep(0)  # still a yield point, as a real sleep would be
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (t, next(self._seq), fut))
        await fut

    async def settle(self) -> None:
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking every sleeper due on the way, in order."""
        end = self._now + seconds
        await self.settle()
        while self._timers and self._timers[0][0] <= end:
            t, _, fut = heapq.heappop(self._timers)
            self._now = max(self._now, t)
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        self._now = end
        await self.settle()


class Ticker:
    """Wakes every `period` seconds on a clock, paced on absolute deadlines.

    The work between ticks does not lower the rate; when the work overruns, the next
    tick comes at once rather than in a burst of missed ones (latest wins).
    """

    def __init__(self, clock: Clock, period: float) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.clock = clock
        self.period = period
        self._due: float | None = None

    async def tick(self) -> float:
        """Sleep until the next tick; returns the clock's time then."""
        now = self.clock.now()
        self._due = now + self.period if self._due is None else max(self._due + self.period, now)
        await self.clock.sleep_until(self._due)
        return self.clock.now()


class MediaClock:
    """Seconds since the call's first media frame was asked for; audio and video
    both place their frames on it, so lip-sync holds by construction."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._t0: float | None = None

    def elapsed(self) -> float:
        """Media time, starting the clock on the first call."""
        now = self.clock.now()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    def peek(self) -> float:
        """Media time; 0 before media has started."""
        return 0.0 if self._t0 is None else self.clock.now() - self._t0

    async def sleep_until(self, media_t: float) -> None:
        """Sleep until the media clock reads `media_t`."""
        base = self.clock.now() if self._t0 is None else self._t0
        await self.clock.sleep_until(base + media_t)
