"""In-process fan-out of live events (affect, escalations, calls) to operator dashboards.

Publishing never waits: each subscriber has its own bounded buffer, and a subscriber
that reads too slowly (a stalled WebSocket) loses its OLDEST events, counted in
`Subscription.dropped`, rather than slowing the calls that publish or the other
dashboards. For a live view the newest state matters most.

What travels is a typed `core.events.Event`; readers turn it into JSON with
`core.events.encode` where it leaves the process.

With several workers (`bus.url`), `core.redisbus.RedisEventBus` is this same bus whose
events also travel to every other worker's; a subscriber chooses with `remote` which
of theirs it takes (a dashboard: all; the escalation watcher: only acknowledgements,
since each worker judges its own calls).

Everything here runs on the event loop thread; `publish` is a plain function so the
pure cores' results can be published without awaiting. Events are frozen and shared
between subscribers as they are; what one holds (an escalation's `context`) must not be
changed after publishing either.
"""

from __future__ import annotations

import asyncio
import collections
from types import TracebackType
from typing import TypeAlias

from avatar_agent.core.events import Event

__all__ = ["Event", "EventBus", "Remote", "Subscription"]

Remote: TypeAlias = bool | tuple[type[Event], ...]


class Subscription:
    """One subscriber's view of the bus: an async iterator over events.

    Use it as a context manager (`with` or `async with`) so it unsubscribes when the
    reader goes away. After `close()` iteration yields what is still buffered, then stops.
    """

    def __init__(self, bus: EventBus, maxsize: int, remote: Remote = True) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self.maxsize = maxsize
        self.remote = remote
        self._items: collections.deque[Event] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        self.delivered = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def _put(self, event: Event) -> None:
        if self._closed:
            return
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._ready.set()

    def get_nowait(self) -> Event | None:
        """The oldest buffered event, or None when there is none."""
        if not self._items:
            return None
        self.delivered += 1
        return self._items.popleft()

    async def get(self) -> Event:
        """Wait for the next event; raises StopAsyncIteration once closed and drained."""
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._items.popleft()

    def close(self) -> None:
        """Unsubscribe; idempotent. A reader waiting in `get` wakes up and stops."""
        if self._closed:
            return
        self._closed = True
        self._bus._remove(self)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.published = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, maxsize: int = 256, remote: Remote = True) -> Subscription:
        """`remote`: which events published on other workers this subscriber takes:
        all (True), none (False), or those of the given classes."""
        sub = Subscription(self, maxsize, remote)
        self._subs.add(sub)
        return sub

    def publish(self, event: Event) -> None:
        """Hand the event to every subscriber; never blocks, never raises for a slow reader."""
        self.published += 1
        for sub in tuple(self._subs):
            sub._put(event)

    def close(self) -> None:
        """Close every subscription, so readers' loops end (server shutdown)."""
        for sub in tuple(self._subs):
            sub.close()

    async def start(self) -> None:
        """Connect to the other workers, if there are any (nothing to do in-process)."""

    async def aclose(self) -> None:
        """`close`, and disconnect from the other workers."""
        self.close()

    def _remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)
