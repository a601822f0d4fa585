"""After a crash, a call's `ended_at` is the last moment it was known alive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from avatar_agent.core.store import Store


def test_orphans_end_at_their_last_heartbeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    store = Store(url)
    store.call_started("beating", True)
    store.call_started("silent", False)
    store.call_started("ended", False)
    beat = dt.datetime(2026, 1, 1, 12, 0, 5, tzinfo=dt.UTC)
    store.heartbeat(["beating", "ended"], now=beat)
    store.call_ended("ended", "hangup")
    started = store.get_call("silent")
    store.close()  # the server dies here; a new one opens the same database

    store = Store(url)
    assert store.end_orphans() == 2
    beating, silent, ended = (store.get_call(c) for c in ("beating", "silent", "ended"))
    assert beating is not None and silent is not None and ended is not None and started
    assert beating.end_reason == "server_restart"
    assert beating.ended_at is not None
    assert beating.ended_at.replace(tzinfo=dt.UTC) == beat
    # no heartbeat at all: it ended no later than it began to be unknown
    assert silent.ended_at is not None
    assert silent.ended_at.replace(tzinfo=dt.UTC) == started.started_at.replace(tzinfo=dt.UTC)
    assert ended.end_reason == "hangup"
    assert store.end_orphans() == 0
    store.close()
