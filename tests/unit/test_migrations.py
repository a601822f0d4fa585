"""Schema migrations on SQLite: a new database, one made before migrations (by
`create_all`, with rows, from before operator roles) and one already at the newest
revision all end at exactly the schema the models declare, without losing a row."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine

from avatar_agent.core import migrations
from avatar_agent.core.store import Store
from avatar_agent.core.tables import Base
from avatar_agent.operators import sessions


def declared() -> MetaData:
    """Every table the code declares: the store's models and the login sessions."""
    meta = MetaData()
    for table in (*Base.metadata.tables.values(), *sessions._metadata.tables.values()):
        table.to_metadata(meta)
    return meta


def schema_drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), declared()))


def test_a_new_database_gets_the_declared_schema_at_head(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert migrations.current(store.engine) == migrations.head()
        assert schema_drift(store.engine) == []
    finally:
        store.close()


def test_a_database_from_before_migrations_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = create_engine(f"sqlite:///{db}")
    # what `create_all` made before migrations, less the tables and columns added since
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE calls (id VARCHAR(64) NOT NULL, started_at DATETIME NOT NULL, "
                "ended_at DATETIME, end_reason VARCHAR(64), consent_analysis BOOLEAN NOT NULL, "
                "PRIMARY KEY (id))")
    con.commit()
    for name in ("affect_points", "call_events", "escalations"):
        Base.metadata.tables[name].create(old)
    old.dispose()
    # as `create_all` made it before roles existed
    con.execute("CREATE TABLE operators (name VARCHAR(64) NOT NULL, password_hash "
                "VARCHAR(256) NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (name))")
    con.execute("INSERT INTO operators VALUES ('carol', 'h', '2026-01-01 00:00:00')")
    con.execute("INSERT INTO calls VALUES ('c1', '2026-01-01 00:00:00', "
                "'2026-01-01 00:05:00', 'hangup', 1)")
    con.execute("INSERT INTO affect_points (call_id, created_at, t, arousal, valence, "
                "anger_index, level, emotion) VALUES "
                "('c1', '2026-01-01 00:00:01', 1.0, 0.1, 0.2, 42.0, 'calm', 'neutral')")
    con.commit()
    con.close()

    store = Store(f"sqlite:///{db}")
    try:
        assert migrations.current(store.engine) == migrations.head()
        assert schema_drift(store.engine) == []
        rec = store.get_call("c1")
        assert rec is not None and rec.end_reason == "hangup"
        assert store.affect_points("c1")[0]["anger_index"] == 42.0
        assert store.operator_role("carol") == "operator"
        # the tables added since work at once
        store.heartbeat(["c1"], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        assert store.add_persona_version("p", "carol", "save", [], "a", "b")["id"] == 1
    finally:
        store.close()
    # opening it again finds nothing to do
    again = Store(f"sqlite:///{db}")
    try:
        assert migrations.current(again.engine) == migrations.head()
        assert again.get_call("c1") is not None
    finally:
        again.close()
