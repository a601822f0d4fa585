"""Receiving the customer's media: always drain the track, keep only the latest frame.

aiortc queues incoming frames without bound, so a track must be read continuously
even when no stage wants its frames; analysis reads from a `LatestSlot`, where a new
frame replaces an unread one and the replacement is counted as a drop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_in = TypeVar("T_in", contravariant=True)
log = logging.getLogger(__name__)


class LatestSlot(Generic[T]):
    """Holds the newest item only. Pure: no clock, no asyncio."""

    def __init__(self) -> None:
        self._item: T | None = None
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store item; return True when it replaced one nobody read (a drop)."""
        replaced = self._item is not None
        if replaced:
            self.dropped += 1
        self._item = item
        self.received += 1
        return replaced

    def take(self) -> T | None:
        item, self._item = self._item, None
        return item


class BoundedQueue(Generic[T]):
    """Keeps up to `maxlen` items in order; when full the oldest is dropped and counted.

    For audio analysis, which needs contiguous samples rather than only the newest.
    Pure: no clock, no asyncio.
    """

    def __init__(self, maxlen: int) -> None:
        self._items: deque[T] = deque(maxlen=maxlen)
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        full = len(self._items) == self._items.maxlen
        if full:
            self.dropped += 1
        self._items.append(item)
        self.received += 1
        return full

    def drain(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        return items


class Sink(Protocol[T_in]):
    def put(self, item: T_in) -> bool: ...


class Receiver(Generic[T]):
    """Reads a media track until it ends, handing each frame to the latest-frame slots."""

    def __init__(
        self,
        kind: str,
        recv: Callable[[], Awaitable[T]],
        on_frame: Callable[[T], None] | None = None,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.kind = kind
        self._recv = recv
        self._on_frame = on_frame
        self._on_drop = on_drop
        self._sinks: list[tuple[Sink[T], bool]] = []  # (sink, its skips count as drops)
        self._arrival: asyncio.Future[None] | None = None
        self.frames = 0
        self.ended = False

    def subscribe(self, *, sampled: bool = False) -> LatestSlot[T]:
        """Latest frame wins: for analysis that only wants the newest picture.

        A `sampled` reader (an operator's view at a few frames a second) skips frames on
        purpose, so its skips are not counted as drops.
        """
        slot: LatestSlot[T] = LatestSlot()
        self._sinks.append((slot, not sampled))
        return slot

    def subscribe_queue(self, maxlen: int) -> BoundedQueue[T]:
        """Frames in order, bounded: for analysis that needs a continuous signal."""
        queue: BoundedQueue[T] = BoundedQueue(maxlen)
        self._sinks.append((queue, True))
        return queue

    def unsubscribe(self, sink: Sink[T]) -> None:
        """Stop handing frames to `sink` (a viewer that went away)."""
        self._sinks = [entry for entry in self._sinks if entry[0] is not sink]

    async def arrival(self) -> None:
        """Wait until the next frame has been handed to the subscribers.

        For a consumer that must react to each frame at once (barge-in) without
        polling its queue; several consumers may wait on the same arrival. Returns at
        once after the track has ended, as no frame will come: a consumer's loop must
        look at `ended` when its queue is empty, or it spins without yielding.
        """
        if self.ended:
            return
        if self._arrival is None or self._arrival.done():
            self._arrival = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._arrival)

    def _arrived(self) -> None:
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)

    async def run(self) -> None:
        while True:
            try:
                frame = await self._recv()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the remote track ended (MediaStreamError) or broke
                log.info("%s track ended: %s", self.kind, type(exc).__name__)
                self.ended = True
                self._arrived()  # waiters look at `ended` rather than wait forever
                return
            self.frames += 1
            if self._on_frame is not None:
                self._on_frame(frame)
            for sink, counted in self._sinks:
                if sink.put(frame) and counted and self._on_drop is not None:
                    self._on_drop()
            self._arrived()
