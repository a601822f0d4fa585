"""Retention: affect curves, events and escalations are deleted after `privacy.retention_days`.

`cutoff` is the pure rule; `purge` applies it to a store once; `run_retention` is the
background task the server runs every `privacy.purge_interval_h`, starting at once so
a server that was down for a while catches up on start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from avatar_agent.core.config import PrivacyConfig
from avatar_agent.core.store import AsyncStore, Store

log = logging.getLogger(__name__)


def cutoff(now: dt.datetime, retention_days: float) -> dt.datetime:
    """Rows written before this instant are past retention."""
    return now - dt.timedelta(days=retention_days)


def purge(store: Store, cfg: PrivacyConfig, now: dt.datetime) -> dict[str, int]:
    return store.purge_before(cutoff(now, cfg.retention_days))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def run_retention(
    store: AsyncStore, cfg: PrivacyConfig, clock: Callable[[], dt.datetime] = _utcnow
) -> None:
    while True:
        try:
            counts = await store.run(purge, store.store, cfg, clock())
        except Exception:  # a failed purge is retried at the next interval
            log.exception("retention purge failed")
        else:
            if any(counts.values()):
                log.info("retention purge removed %s", counts)
        await asyncio.sleep(cfg.purge_interval_h * 3600)
