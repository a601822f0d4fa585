"""A worker's membership of a cluster: it records itself (address, calls, capacity)
with a heartbeat in the shared store, and it watches for the others: a worker silent
for `cluster.lost_after_s` is lost (killed, or its machine gone), and whichever worker
notices first ends its calls with reason `worker_lost` at their last heartbeat, keeping
their curves, events and transcripts, and tells the dashboards on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from avatar_agent.core.bus import EventBus
from avatar_agent.core.config import ClusterConfig
from avatar_agent.core.events import CallEnded
from avatar_agent.core.store import AsyncStore

log = logging.getLogger(__name__)

LOST = "worker_lost"


async def beat_once(store: AsyncStore, cfg: ClusterConfig, calls: int, max_calls: int,
                    bus: EventBus) -> dict[str, list[str]]:
    """One heartbeat and one look for lost workers; the calls it ended, by worker."""
    assert cfg.worker_id is not None
    await store.run(store.store.worker_beat, cfg.worker_id, cfg.address, calls, max_calls)
    lost = await store.run(store.store.end_lost_workers, cfg.lost_after_s)
    for worker, call_ids in lost.items():
        log.warning("worker %s lost: ended its %d calls", worker, len(call_ids))
        for call_id in call_ids:
            bus.publish(CallEnded(call_id=call_id, reason=LOST))
    return lost


async def membership(store: AsyncStore, cfg: ClusterConfig, max_calls: int,
                     live_calls: Callable[[], int], bus: EventBus) -> None:
    """Beat every `heartbeat_s` for as long as the worker runs; on the way out (the
    task cancelled at shutdown, its calls ended), leave the registry."""
    assert cfg.worker_id is not None
    try:
        while True:
            try:
                await beat_once(store, cfg, live_calls(), max_calls, bus)
            except Exception:  # the database may be back at the next beat
                log.exception("cluster heartbeat failed")
            await asyncio.sleep(cfg.heartbeat_s)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(store.run(store.store.worker_left, cfg.worker_id))


def worker_header(worker_id: str) -> Callable[[web.Request, web.StreamResponse],
                                               Awaitable[None]]:
    """An `on_response_prepare` hook naming this worker in `X-Avatar-Worker`: the front
    sends a customer's offer and hang-up to the worker that gave them their join token
    (it keeps the header from the customer)."""
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Avatar-Worker"] = worker_id
    return add
