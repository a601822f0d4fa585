from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from avatar_agent.core.store import AFFECT_FIELDS, Store


def test_call_lifecycle_in_a_real_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "calls.db"
    store = Store(f"sqlite:///{db}")
    store.call_started("a", consent_analysis=True)
    store.call_started("b", consent_analysis=False)
    assert store.get_call("a") is not None and store.get_call("a").ended_at is None  # type: ignore[union-attr]
    store.call_ended("a", "hangup")
    store.call_ended("a", "connection_failed")  # the first reason wins
    store.close()

    con = sqlite3.connect(db)
    rows = dict(
        (r[0], r[1:])
        for r in con.execute(
            "select id, ended_at is not null, end_reason, consent_analysis from calls"
        )
    )
    assert rows == {"a": (1, "hangup", 1), "b": (0, None, 0)}


def test_orphans_closed_on_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    s1 = Store(url)
    s1.call_started("x", True)
    s1.close()
    s2 = Store(url)
    assert s2.end_orphans() == 1
    rec = s2.get_call("x")
    assert rec is not None and rec.end_reason == "server_restart"
    assert [c.id for c in s2.list_calls()] == ["x"]


def test_a_timeline_batch_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.call_started("a", True)
    point = {"t": 1.0, "arousal": 0.5, "valence": 0.0, "anger_index": 10.0, "level": "calm",
             "emotion": "neutral"}
    assert set(point) == set(AFFECT_FIELDS)
    store.add_timeline("a", [point], [{"t": 1.0, "kind": "level", "level": "calm"}])
    assert [p["t"] for p in store.affect_points("a")] == [1.0]
    assert [(e["t"], e["kind"]) for e in store.events("a")] == [(1.0, "level")]
    # an event that cannot be stored takes the batch's points with it: the curve
    # never shows points whose events were lost
    with pytest.raises(KeyError):
        store.add_timeline("a", [{**point, "t": 2.0}], [{"t": 2.0}])
    assert [p["t"] for p in store.affect_points("a")] == [1.0]
    assert len(store.events("a")) == 1
    store.close()
