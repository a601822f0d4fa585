"""Workers of a cluster on one real PostgreSQL: each records itself with a heartbeat;
a worker killed with SIGKILL mid-call is noticed by another, which ends its call with
`worker_lost` at the call's last heartbeat, keeps its curve and tells the dashboards;
a restarted worker ends only its own calls left open; a database at the first revision
is upgraded with its calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from avatar_agent.core import migrations
from avatar_agent.core.bus import EventBus
from avatar_agent.core.cluster import LOST, beat_once, membership
from avatar_agent.core.config import ClusterConfig
from avatar_agent.core.events import CallEnded
from avatar_agent.core.store import AsyncStore, Store, engine_url
from tests.support.services import postgres

POINT = {"t": 1.0, "arousal": 0.4, "valence": -0.3, "anger_index": 55.0,
         "level": "dissatisfied", "emotion": "angry"}

# A worker in miniature: it holds one call, writes its curve and beats (worker and
# call) every 0.2 s, until it is killed.
WORKER_B = """
import sys, time
from avatar_agent.core.store import Store
s = Store(sys.argv[1])
s.call_started("call-on-b", True, worker="b")
s.add_timeline("call-on-b", [POINT], [])
print("ready", flush=True)
while True:
    s.worker_beat("b", "http://127.0.0.1:9", 1, 20)
    s.heartbeat(["call-on-b"])
    time.sleep(0.2)
""".replace("POINT", repr(POINT))


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres() as url:
        yield url


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    s = Store(pg_url)
    with s.engine.begin() as conn:
        conn.execute(text("TRUNCATE calls, affect_points, call_events, escalations, "
                          "call_heartbeats, workers"))
    yield s
    s.close()


def test_a_lost_workers_calls_end_at_their_last_heartbeat(store: Store) -> None:
    t0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    store.call_started("on-a", True, worker="a")
    store.call_started("on-b", True, worker="b")
    store.add_timeline("on-b", [POINT], [])
    store.worker_beat("a", "http://a", 1, 20, now=t0)
    store.worker_beat("b", "http://b", 1, 20, now=t0)
    store.heartbeat(["on-b"], now=t0 + dt.timedelta(seconds=3))
    store.worker_beat("a", "http://a", 1, 20, now=t0 + dt.timedelta(seconds=20))
    assert store.end_lost_workers(20, now=t0 + dt.timedelta(seconds=19)) == {}
    assert store.end_lost_workers(20, now=t0 + dt.timedelta(seconds=25)) == {"b": ["on-b"]}
    b = store.get_call("on-b")
    assert b is not None and b.end_reason == LOST and b.worker == "b"
    assert b.ended_at == t0 + dt.timedelta(seconds=3)
    assert store.affect_points("on-b") == [POINT]  # the curve is kept
    a = store.get_call("on-a")
    assert a is not None and a.ended_at is None
    assert [w["id"] for w in store.workers()] == ["a"]
    assert store.end_lost_workers(20, now=t0 + dt.timedelta(seconds=26)) == {}


def test_a_restarted_worker_ends_only_its_own_calls(store: Store) -> None:
    store.call_started("mine", False, worker="a")
    store.call_started("theirs", False, worker="b")
    assert store.end_orphans(worker="a") == 1
    mine, theirs = store.get_call("mine"), store.get_call("theirs")
    assert mine is not None and mine.end_reason == "server_restart"
    assert theirs is not None and theirs.ended_at is None


async def test_a_worker_killed_mid_call_is_ended_by_another(store: Store, pg_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER_B, pg_url, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        a = AsyncStore(store)
        cfg = ClusterConfig(worker_id="a", address="http://a", heartbeat_s=0.25,
                            lost_after_s=1.0)
        bus = EventBus()
        with bus.subscribe() as dashboard:
            await asyncio.sleep(0.5)
            assert await beat_once(a, cfg, 0, 20, bus) == {}  # B is alive
            assert {w["id"] for w in store.workers()} == {"a", "b"}
            task = asyncio.create_task(membership(a, cfg, 20, lambda: 0, bus))
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            await proc.wait()
            ended = await asyncio.wait_for(dashboard.get(), 10)
            noticed = time.monotonic() - killed
            assert ended == CallEnded(call_id="call-on-b", reason=LOST)
            assert noticed < cfg.lost_after_s + 2 * cfg.heartbeat_s + 1
            rec = store.get_call("call-on-b")
            assert rec is not None and rec.end_reason == LOST
            assert store.affect_points("call-on-b")[0]["anger_index"] == POINT["anger_index"]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert store.workers() == []  # A left cleanly
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_a_database_at_the_first_revision_is_upgraded_with_its_calls() -> None:
    with postgres() as url:
        engine = create_engine(engine_url(url))
        migrations.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO calls VALUES ('old', now(), NULL, NULL, true)"))
        engine.dispose()
        s = Store(url)
        try:
            assert migrations.current(s.engine) == migrations.head() == "0002"
            old = s.get_call("old")
            assert old is not None and old.worker is None and old.consent_analysis
        finally:
            s.close()
