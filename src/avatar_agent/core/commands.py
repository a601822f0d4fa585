"""Commands to the worker that holds a call, through Redis: an operator's `say` or
`end` may land on any worker; the one that received it sends the command to the call's
owner (recorded in the store) and answers the operator with the owner's answer.

Each worker listens on its own channel (`<bus.channel>:cmd:<worker_id>`) and gets
answers on another (`...:reply:<worker_id>`); a command names its reply channel and
an id. Redis tells the sender how many listened: none means the owner is gone (503
at once, rather than a wait for nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from avatar_agent.core.redisbus import REDIS_ERRORS, RedisOutage

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]


class CommandLink:
    def __init__(self, url: str, prefix: str, worker_id: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.prefix = prefix
        self.worker_id = worker_id
        self.timeout_s = timeout_s
        self._redis: aioredis.Redis | None = None
        self._waiting: dict[str, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self._handler: Handler | None = None

    def _inbox(self, worker: str) -> str:
        return f"{self.prefix}:cmd:{worker}"

    def _replies(self, worker: str) -> str:
        return f"{self.prefix}:reply:{worker}"

    async def start(self, handler: Handler) -> None:
        self._handler = handler
        self._redis = aioredis.Redis.from_url(self.url)
        # the subscriptions' confirmations, sent again at each reconnect, say it is back
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._inbox(self.worker_id), self._replies(self.worker_id))
        self._task = asyncio.create_task(self._listen(pubsub), name="commands")

    async def send(self, worker: str, command: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The owner's answer (HTTP status, JSON body); 503 if it cannot be reached."""
        assert self._redis is not None, "start() first"
        cid = uuid.uuid4().hex
        fut: asyncio.Future[tuple[int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future())
        self._waiting[cid] = fut
        try:
            try:
                heard = await self._redis.publish(self._inbox(worker), json.dumps(
                    {**command, "id": cid, "reply_to": self.worker_id}))
            except REDIS_ERRORS as exc:
                log.warning("commands: cannot reach Redis (%s)", exc)
                return 503, {"error": "the cluster's Redis is not reachable; try again"}
            if not heard:
                return 503, {"error": f"the worker holding the call ({worker}) is not reachable"}
            return await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError:
            return 504, {"error": f"the worker holding the call ({worker}) did not answer"}
        finally:
            self._waiting.pop(cid, None)

    async def _listen(self, pubsub: Any) -> None:
        outage = RedisOutage("commands")
        while True:
            try:
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._take(message.get("channel"), message.get("data"))
                    else:  # (re)subscribed
                        outage.ok()
            except REDIS_ERRORS as exc:
                await asyncio.sleep(outage.failed(exc))

    def _take(self, channel: Any, data: Any) -> None:
        try:
            message = json.loads(data)
            cid = str(message["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("commands: dropped a message that is no command")
            return
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if name == self._replies(self.worker_id):
            fut = self._waiting.get(cid)
            if fut is not None and not fut.done():
                fut.set_result((int(message["status"]), dict(message["body"])))
            return
        task = asyncio.create_task(self._answer(message))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _answer(self, message: dict[str, Any]) -> None:
        assert self._handler is not None and self._redis is not None
        try:
            status, body = await self._handler(message)
        except Exception:
            log.exception("command %s failed", message.get("op"))
            status, body = 500, {"error": "the command failed on the worker holding the call"}
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.publish(self._replies(str(message["reply_to"])), json.dumps(
                {"id": message["id"], "status": status, "body": body}))

    async def aclose(self) -> None:
        for task in (self._task, *self._handling):
            if task is not None:
                task.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()
