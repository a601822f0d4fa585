"""The customer's transcripts are personal data: purged with the curves and events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from avatar_agent.core.store import Store
from avatar_agent.core.tables import CallEventRow

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_transcripts_go_with_the_retention_purge(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'calls.db'}")
    for call_id in ("old", "new"):
        store.call_started(call_id, False)
        store.add_events(call_id, [{"t": 1.0, "kind": "transcript", "role": "customer",
                                    "text": "my card number is ...", "t_end": 2.5}])
    with Session(store.engine) as s, s.begin():
        s.execute(update(CallEventRow).where(CallEventRow.call_id == "old")
                  .values(created_at=NOW - dt.timedelta(days=31)))
    store.purge_before(NOW - dt.timedelta(days=30))
    assert store.events("old") == []
    assert store.events("new") == [{"t": 1.0, "kind": "transcript", "role": "customer",
                                    "text": "my card number is ...", "t_end": 2.5}]
    store.close()
