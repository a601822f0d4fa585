"""The event bus across workers on a real Redis (Debian's redis-server, started here):
what worker B publishes reaches worker A's dashboards as the same typed event; an
escalation raised by B's watcher reaches an operator on A; an acknowledgement taken on
A reaches B's watcher; each worker judges only its own calls; nothing arrives twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from avatar_agent.core.aio import InlineExecutor
from avatar_agent.core.bus import EventBus, Subscription
from avatar_agent.core.config import BusConfig, EscalationConfig
from avatar_agent.core.events import (
    AffectUpdate,
    CallStarted,
    Escalation,
    EscalationAcknowledged,
    Transcript,
)
from avatar_agent.core.redisbus import RedisEventBus, make_bus
from avatar_agent.core.store import AsyncStore, Store
from avatar_agent.operators.watcher import EscalationWatcher
from tests.support.services import redis


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis() as url:
        yield url


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    a = make_bus(BusConfig(url=redis_url), origin="worker-a")
    b = make_bus(BusConfig(url=redis_url), origin="worker-b")
    assert isinstance(a, RedisEventBus) and isinstance(b, RedisEventBus)
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()


async def take(sub: Subscription, kind: type[Any], timeout_s: float = 3.0) -> Any:
    async with asyncio.timeout(timeout_s):
        async for ev in sub:
            if isinstance(ev, kind):
                return ev
    raise AssertionError(f"no {kind.__name__}")


def affect(t: float, index: float, call_id: str = "call-b") -> AffectUpdate:
    return AffectUpdate(call_id=call_id, t=t, arousal=0.6, valence=-0.5, anger_index=index,
                        level="dissatisfied", emotion="angry")


def test_without_a_url_the_bus_is_in_process() -> None:
    assert type(make_bus(BusConfig())) is EventBus


async def test_an_event_published_on_b_reaches_a_once_and_b_locally(
        workers: tuple[RedisEventBus, RedisEventBus]) -> None:
    a, b = workers
    with a.subscribe() as on_a, b.subscribe() as on_b, \
            a.subscribe(remote=False) as a_local:
        sent = Transcript(call_id="call-b", role="customer", text="我的订单在哪里?",
                          t_start=1.0, t_end=2.5)
        b.publish(sent)
        assert await take(on_a, Transcript) == sent
        assert on_b.get_nowait() == sent  # in-process, at once
        await asyncio.sleep(0.2)
        assert on_b.get_nowait() is None  # ... and not again from Redis
        assert a_local.get_nowait() is None
        assert a.received >= 1 and b.sent >= 1


async def test_an_escalation_raised_on_b_reaches_an_operator_on_a(
        workers: tuple[RedisEventBus, RedisEventBus], tmp_path: Path) -> None:
    a, b = workers
    stores = [AsyncStore(Store(f"sqlite:///{tmp_path / f'{n}.db'}"), InlineExecutor())
              for n in "ab"]
    for s in stores:
        s.store.call_started("call-b", True)
    cfg = EscalationConfig(rule="hold", anger_threshold=70, hold_s=1, on_furious=False)
    watchers = [EscalationWatcher(cfg, a, stores[0]), EscalationWatcher(cfg, b, stores[1])]
    tasks = [asyncio.create_task(w.run()) for w in watchers]
    try:
        with a.subscribe() as operator_on_a:
            await asyncio.sleep(0.1)  # the watchers subscribed
            b.publish(CallStarted(call_id="call-b", consent_analysis=True))
            for i in range(8):
                b.publish(affect(2 + i * 0.25, 85))
            esc = await take(operator_on_a, Escalation)
            assert esc.call_id == "call-b" and isinstance(esc.id, int)
            assert len(esc.context["curve"]) >= 5  # B's watcher had the call's curve
            # only B's watcher judged B's call: A never saw its affect
            assert watchers[1].raised == 1 and watchers[0].raised == 0
            assert "call-b" not in watchers[0].calls
            assert stores[1].store.escalations("call-b")[0]["id"] == esc.id
            assert stores[0].store.escalations("call-b") == []

            # the operator on A acknowledges: B's watcher closes the alert
            assert watchers[1].calls["call-b"].open_escalation is not None
            with b.subscribe(remote=(EscalationAcknowledged,)) as like_b_watcher:
                a.publish(EscalationAcknowledged(call_id="call-b", id=esc.id,
                                                 acknowledged_by="ann", acknowledged_at=None))
                await take(like_b_watcher, EscalationAcknowledged)
            for _ in range(10):  # B's watcher takes it from the same delivery
                await asyncio.sleep(0)
            assert watchers[1].calls["call-b"].open_escalation is None
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in stores:
            s.store.close()


async def test_events_published_while_redis_is_unreachable_wait_and_are_counted(
        redis_url: str) -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0", "x", max_pending=100)
    with pytest.raises(RedisConnectionError):
        await bus.start()  # a worker that cannot reach the others does not start
    for i in range(150):
        bus.publish(affect(float(i), 10))
    assert bus.lost == 50
    await bus.aclose()
