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

When Redis goes away (restarted, or its machine gone) the worker's calls go on: the
bus tries again with growing pauses (`RedisOutage`: one warning when it is lost, one
line when it is back) and, once back, sends what queued meanwhile and subscribes
again; what other workers published while this one was cut off is gone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from avatar_agent.core.bus import EventBus
from avatar_agent.core.config import BusConfig
from avatar_agent.core.events import Event, encode
from avatar_agent.core.wire import decode

log = logging.getLogger(__name__)

# after Redis went away, try again after this long, doubling up to RETRY_MAX_S: soon
# after a restart, without a tight loop when it is gone for longer
RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0
REDIS_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)


class RedisOutage:
    """One task's view of its Redis connection: a warning when it is lost (not one
    per retry), the pause before the next try, a line when it is back."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None  # loop time it was lost; None while up
        self.delay = RETRY_MIN_S
        self.outages = 0

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before the next try."""
        now = asyncio.get_running_loop().time()
        if self.since is None:
            self.since, self.delay = now, RETRY_MIN_S
            self.outages += 1
            log.warning("%s: lost Redis (%s); retrying until it is back", self.what, exc)
        else:
            self.delay = min(self.delay * 2, RETRY_MAX_S)
        return self.delay

    def ok(self) -> None:
        if self.since is not None:
            down = asyncio.get_running_loop().time() - self.since
            self.since = None
            log.warning("%s: Redis is back after %.1f s", self.what, down)


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
        self.send_outage = RedisOutage("event bus (publishing)")
        self.receive_outage = RedisOutage("event bus (listening)")

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
        # the subscription's confirmation, sent again at each reconnect, says it is back
        pubsub = self._redis.pubsub()
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
            except REDIS_ERRORS as exc:
                await asyncio.sleep(self.send_outage.failed(exc))
                self._wake.set()
            else:
                self.send_outage.ok()

    async def _receive(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._take(message.get("data"))
                    else:  # (re)subscribed
                        self.receive_outage.ok()
            except REDIS_ERRORS as exc:
                await asyncio.sleep(self.receive_outage.failed(exc))

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


class BusCollector(Collector):
    """The Redis bus's counters for `/metrics`, read at each scrape."""

    def __init__(self, bus: RedisEventBus) -> None:
        self.bus = bus

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        b = self.bus
        yield CounterMetricFamily("avatar_agent_bus_events_sent",
                                  "Events this worker handed to Redis", value=b.sent)
        yield CounterMetricFamily("avatar_agent_bus_events_received",
                                  "Other workers' events received from Redis",
                                  value=b.received)
        yield CounterMetricFamily("avatar_agent_bus_events_lost",
                                  "Events never sent: the queue overflowed while Redis "
                                  "was away", value=b.lost)
        yield CounterMetricFamily("avatar_agent_bus_outages",
                                  "Times the bus lost Redis (publishing or listening)",
                                  value=b.send_outage.outages + b.receive_outage.outages)
        yield GaugeMetricFamily("avatar_agent_bus_pending",
                                "Events waiting to be sent to Redis", value=len(b._pending))


def register_bus_metrics(bus: EventBus, registry: CollectorRegistry) -> None:
    """The Redis bus's counters on `/metrics`; nothing for the in-process bus."""
    if isinstance(bus, RedisEventBus):
        registry.register(BusCollector(bus))
