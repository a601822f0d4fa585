"""The event bus across workers: Redis pub/sub under the in-process bus's interface.

Each worker publishes every event on one channel (JSON from `core.events.encode`,
tagged with the worker's origin id) and hears everyone's; what comes back from Redis
is decoded (`core.wire.decode`) and handed to the subscribers that take remote events
(`EventBus.subscribe(remote=...)`). A worker's own events reach its own subscribers at
once, in-process, never twice.

Publishing still never waits: events queue in memory (bounded, oldest dropped and
counted in `lost`) and one task sends them in pipelined batches. Pub/sub keeps nothing
for a worker that is not listening: a live view needs only what happens now, and
what must last (curves, events, escalations) is in the store.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from typing import Any

import redis.asyncio as aioredis

from avatar_agent.core.bus import EventBus
from avatar_agent.core.config import BusConfig
from avatar_agent.core.events import Event, encode
from avatar_agent.core.wire import decode

log = logging.getLogger(__name__)

RETRY_S = 1.0  # after Redis went away, try again this often


def make_bus(cfg: BusConfig, origin: str | None = None) -> EventBus:
    """Redis when `bus.url` is set, in-process otherwise."""
    if cfg.url is None:
        return EventBus()
    return RedisEventBus(cfg.url, cfg.channel, origin=origin, max_pending=cfg.max_pending)


class RedisEventBus(EventBus):
    def __init__(self, url: str, channel: str, origin: str | None = None,
                 max_pending: int = 10000) -> None:
        super().__init__()
        self.url = url
        self.channel = channel
        self.origin = origin or uuid.uuid4().hex
        self.max_pending = max_pending
        self._pending: collections.deque[str] = collections.deque()
        self._wake = asyncio.Event()
        self._redis: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.sent = 0  # events handed to Redis
        self.received = 0  # other workers' events delivered here
        self.lost = 0  # events never sent: the queue overflowed while Redis was away

    def publish(self, event: Event) -> None:
        super().publish(event)
        if self._closed:
            return
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.lost += 1
        self._pending.append(json.dumps({"o": self.origin, "e": encode(event)}))
        self._wake.set()

    async def start(self) -> None:
        """Connect and subscribe; raises if Redis cannot be reached (a worker that
        cannot reach the others should not take calls)."""
        self._redis = aioredis.Redis.from_url(self.url)
        await self._redis.ping()
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        self._tasks = [asyncio.create_task(self._send(), name="bus-send"),
                       asyncio.create_task(self._receive(pubsub), name="bus-receive")]

    async def aclose(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):  # a last flush, if Redis is still there
            await asyncio.wait_for(self._flush(), 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._redis is not None:
            await self._redis.aclose()
        self.close()

    def _deliver(self, event: Event) -> None:
        self.received += 1
        for sub in tuple(self._subs):
            remote = sub.remote
            if remote is True or (remote and isinstance(event, remote)):
                sub._put(event)

    async def _flush(self) -> None:
        assert self._redis is not None
        while self._pending:
            batch = list(self._pending)
            self._pending.clear()
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
            except BaseException:
                # sent again once Redis is back, ahead of what came meanwhile
                self._pending.extendleft(reversed(batch))
                while len(self._pending) > self.max_pending:
                    self._pending.popleft()
                    self.lost += 1
                raise
            self.sent += len(batch)

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("event bus: cannot publish to Redis (%s); retrying", exc)
                await asyncio.sleep(RETRY_S)
                self._wake.set()

    async def _receive(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    self._take(message.get("data"))
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("event bus: lost Redis (%s); reconnecting", exc)
                await asyncio.sleep(RETRY_S)

    def _take(self, data: Any) -> None:
        try:
            message = json.loads(data)
            if message["o"] == self.origin:
                return  # our own, already delivered in-process
            event = decode(message["e"])
        except (ValueError, KeyError, TypeError):
            log.warning("event bus: dropped a message that is no event")
            return
        self._deliver(event)
