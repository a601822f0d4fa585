"""Retention on a real SQLite file: rows past `retention_days` go, newer ones stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from avatar_agent.core.config import PrivacyConfig
from avatar_agent.core.store import Store
from avatar_agent.core.tables import AffectPointRow, CallEventRow, CallRow, EscalationRow
from avatar_agent.operators.retention import cutoff, purge

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_cutoff() -> None:
    assert cutoff(NOW, 30) == dt.datetime(2025, 5, 2, 12, 0, tzinfo=dt.UTC)
    assert cutoff(NOW, 0.5) == NOW - dt.timedelta(hours=12)


def _age(store: Store, call_id: str, when: dt.datetime) -> None:
    with Session(store.engine) as s, s.begin():
        for table in (AffectPointRow, CallEventRow, EscalationRow):
            s.execute(update(table).where(table.call_id == call_id).values(created_at=when))
        s.execute(update(CallRow).where(CallRow.id == call_id)
                  .values(started_at=when, ended_at=when))


def _fill(store: Store, call_id: str) -> None:
    store.call_started(call_id, True)
    store.add_timeline(call_id, [{"t": 1.0, "arousal": 0.5, "valence": 0.0,
                                  "anger_index": 80.0, "level": "furious",
                                  "emotion": "angry"}],
                       [{"t": 1.0, "kind": "caption", "text": "hello"}])
    store.add_escalation(call_id, 1.0, "furious", "level furious")
    store.call_ended(call_id, "hangup")


def test_purge_removes_only_rows_past_retention(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'calls.db'}")
    try:
        for cid in ("old", "edge", "new"):
            _fill(store, cid)
        _age(store, "old", NOW - dt.timedelta(days=31))
        _age(store, "edge", NOW - dt.timedelta(days=29, hours=23))
        counts = purge(store, PrivacyConfig(retention_days=30), NOW)
        assert counts == {"affect_points": 1, "call_events": 1, "escalations": 1, "calls": 1}
        assert store.get_call("old") is None
        assert store.affect_points("old") == [] and store.events("old") == []
        assert store.escalations("old") == []
        for cid in ("edge", "new"):
            assert store.get_call(cid) is not None
            assert len(store.affect_points(cid)) == 1 and len(store.events(cid)) == 1
            assert len(store.escalations(cid)) == 1
        # nothing left to purge: a second run changes nothing
        assert set(purge(store, PrivacyConfig(retention_days=30), NOW).values()) == {0}
    finally:
        store.close()


def test_escalation_acknowledged_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'calls.db'}")
    try:
        _fill(store, "c")
        esc = store.escalations("c", open_only=True)[0]
        first = store.acknowledge(esc["id"], "alice")
        assert first is not None and first["acknowledged_by"] == "alice"
        second = store.acknowledge(esc["id"], "bob")
        assert second is not None and second["acknowledged_by"] == "alice"
        assert second["acknowledged_at"] == first["acknowledged_at"]
        assert store.escalations(open_only=True) == []
        assert store.acknowledge(12345, "alice") is None
    finally:
        store.close()
