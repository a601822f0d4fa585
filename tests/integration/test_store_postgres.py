"""The store on a real PostgreSQL (Debian's package, a throwaway cluster started here):
the same calls as on SQLite, with the same answers; migrations end at the declared
schema; workers starting at once against one database migrate it once, in turn."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from avatar_agent.core import migrations
from avatar_agent.core.store import Store, engine_url
from avatar_agent.operators.sessions import SessionStore
from tests.support.services import postgres
from tests.unit.test_migrations import schema_drift


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'calls.db'}")
    else:
        s = Store(request.getfixturevalue("pg_url"))
        with s.engine.begin() as conn:  # each test starts from empty tables
            conn.execute(text("TRUNCATE calls, affect_points, call_events, escalations, "
                              "operators, call_heartbeats, persona_versions, "
                              "operator_sessions"))
    yield s
    s.close()


def test_postgres_urls_go_through_psycopg3() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        assert engine_url(url) == "postgresql+psycopg://u@h/db"
    assert engine_url("sqlite:///var/x.db") == "sqlite:///var/x.db"


def test_schema_at_head(pg_url: str) -> None:
    s = Store(pg_url)
    try:
        assert s.engine.dialect.driver == "psycopg"
        assert migrations.current(s.engine) == migrations.head()
        assert schema_drift(s.engine) == []
    finally:
        s.close()


def test_calls_curves_events_and_orphans(store: Store) -> None:
    store.call_started("a", consent_analysis=True)
    store.call_started("b", consent_analysis=False)
    store.add_timeline("a", [
        {"t": 2.0, "arousal": 0.5, "valence": -0.2, "anger_index": 61.0, "level": "annoyed",
         "emotion": "angry"},
        {"t": 1.0, "arousal": 0.1, "valence": 0.3, "anger_index": 12.0, "level": "calm",
         "emotion": "neutral"}], [])
    store.add_events("a", [{"t": 1.5, "kind": "level", "level": "annoyed",
                            "nested": {"x": [1, 2]}}])
    store.heartbeat(["a", "b"], now=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC))
    store.call_ended("a", "hangup")
    store.call_ended("a", "connection_failed")  # the first reason wins
    assert [p["anger_index"] for p in store.affect_points("a")] == [12.0, 61.0]
    assert store.events("a") == [{"t": 1.5, "kind": "level", "level": "annoyed",
                                  "nested": {"x": [1, 2]}}]
    assert store.end_orphans() == 1
    b = store.get_call("b")
    assert b is not None and b.end_reason == "server_restart"
    assert b.ended_at is not None
    ended = b.ended_at if b.ended_at.tzinfo else b.ended_at.replace(tzinfo=dt.UTC)
    assert ended == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    a = store.get_call("a")
    assert a is not None and a.end_reason == "hangup"
    assert {c.id for c in store.list_calls(ended_only=True)} == {"a", "b"}


def test_operators_sessions_escalations_and_persona_versions(store: Store) -> None:
    assert store.add_operator("ann", "h1", role="tuner")
    assert not store.add_operator("ann", "h2")
    assert store.operator_role("ann") == "tuner"
    sessions = SessionStore(store.engine)
    sid = sessions.open("ann", now=100.0, ttl_s=60.0)
    assert sessions.is_live(sid, "ann", now=120.0)
    assert sessions.revoke("ann") == 1 and not sessions.is_live(sid, "ann", now=120.0)

    store.call_started("c", True)
    esc = store.add_escalation("c", 3.0, "anger", "x" * 300)
    assert len(esc["detail"]) == 256
    acked = store.acknowledge(esc["id"], "ann")
    assert acked is not None and acked["acknowledged_by"] == "ann"
    again = store.acknowledge(esc["id"], "bob")  # the first operator keeps it
    assert again is not None and again["acknowledged_by"] == "ann"
    assert store.escalations(open_only=True) == []

    store.add_persona_version("p", "ann", "save", [{"k": 1}], "before", "after")
    assert store.undo_persona_save("p", current="other") is None
    undone = store.undo_persona_save("p", current="after")
    assert undone is not None and undone["before"] == "before"
    assert store.persona_history("p")[0]["undone"] is True

    cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    store.call_ended("c", "hangup")
    counts = store.purge_before(cutoff)
    assert counts["escalations"] == 1 and counts["calls"] == 1


def _open(url: str) -> str | None:
    s = Store(url)
    try:
        return migrations.current(s.engine)
    finally:
        s.close()


def test_workers_starting_together_migrate_once(tmp_path: Path) -> None:
    with postgres() as url:  # a database no store has opened yet
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(4) as pool:
            revisions = pool.map(_open, [url] * 4)
        assert revisions == [migrations.head()] * 4
