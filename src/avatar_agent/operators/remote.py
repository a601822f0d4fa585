"""An operator's `say`, `end` and camera view for a call that another worker of the
cluster holds.

The operator's request may land on any worker (the front balances them); a call not
held here is looked up in the shared store, and the command goes to its owner through
`core.commands` (Redis), which runs it on the call as if the request had come to it
and answers with the status and body the operator gets. The camera view is a stream,
not a command: the worker passes the request on to the owner's `cluster.address`
over HTTP with the operator's own credentials (the owner checks them and the call's
consent itself) and pipes the owner's MJPEG back as it comes. Off a cluster (no
`bus.url` or no `cluster.worker_id`) nothing here runs and such a call is simply not
found.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from avatar_agent.core.calls import CallServices, LiveCall
from avatar_agent.core.commands import CommandLink
from avatar_agent.core.events import Takeover, timeline_entry
from avatar_agent.core.httpjson import error
from avatar_agent.operators.http import OPS, Operators, runtime_of

LINK: web.AppKey[CommandLink] = web.AppKey("command-link", CommandLink)
# Names the worker that passed a request on: the owner never passes it on again (a
# call that moved or ended meanwhile is then simply not found, rather than a loop).
RELAYED = "X-Avatar-Relayed-By"


async def takeover(rt: CallServices, session: LiveCall, operator: str,
                   text: str) -> dict[str, Any]:
    """Have the avatar say `text` in this worker's call; recorded with who typed it
    (nothing is measured about the operator) and published to the dashboards."""
    event = Takeover(call_id=session.call_id, t=session.media_time(), operator=operator,
                     text=text)
    session.say(text)
    await rt.store.add_events(session.call_id, [{"kind": "takeover", **timeline_entry(event)}])
    rt.events.publish(event)
    return {"call_id": session.call_id, "text": text, "queued": True}


async def forward(request: web.Request, not_here: web.Response, op: str,
                  **fields: Any) -> web.Response:
    """The owner's answer to the command, or `not_here` when no other worker holds a
    live call of that id."""
    owner = await _other_owner(request)
    if owner is None:
        return not_here
    link, worker = owner
    call_id = request.match_info["call_id"]
    status, body = await link.send(worker, {"op": op, "call_id": call_id, **fields})
    return web.json_response(body, status=status)


async def _other_owner(request: web.Request) -> tuple[CommandLink, str] | None:
    """The command link and the id of the other worker holding the live call the
    request names; None in one server, or when no other worker holds it."""
    link = request.app.get(LINK)
    if link is None:
        return None
    rt = runtime_of(request)
    rec = await rt.store.run(rt.store.store.get_call, request.match_info["call_id"])
    if rec is None or rec.ended_at is not None or rec.worker in (None, link.worker_id):
        return None
    return link, str(rec.worker)


async def owner_address(request: web.Request) -> str | None:
    """Where the worker holding this live call is reached, if another one holds it."""
    if RELAYED in request.headers:
        return None  # passed on once already: never round in circles
    owner = await _other_owner(request)
    if owner is None:
        return None
    rt = runtime_of(request)
    workers = await rt.store.run(rt.store.store.workers)
    return next((str(w["address"]) for w in workers
                 if w["id"] == owner[1] and w["address"]), None)


async def relay_stream(request: web.Request, not_here: web.Response) -> web.StreamResponse:
    """The owner's answer to this GET, streamed through as it comes (the camera's
    MJPEG); `not_here` when no other worker holds a live call of that id."""
    address = await owner_address(request)
    if address is None:
        return not_here
    headers = {RELAYED: request.app[LINK].worker_id}
    for name in ("Authorization", "Cookie"):  # the operator's own credentials
        if name in request.headers:
            headers[name] = request.headers[name]
    # no overall time limit: the view lasts as long as the operator keeps it open
    timeout = aiohttp.ClientTimeout(total=None, connect=5.0)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        try:
            upstream = await client.get(address.rstrip("/") + request.path, headers=headers)
        except (aiohttp.ClientError, TimeoutError):
            return error(502, "the worker holding the call cannot be reached")
        async with upstream:
            if upstream.status != 200:  # refused there: the operator gets the owner's answer
                return web.Response(status=upstream.status, body=await upstream.read(),
                                    content_type=upstream.content_type)
            resp = web.StreamResponse(headers={
                "Content-Type": upstream.headers.get("Content-Type", "application/octet-stream"),
                "Cache-Control": "no-store"})
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except ConnectionError:
                pass  # the operator closed the view: closing here ends the owner's stream
            except aiohttp.ClientError:
                pass  # the owner went away mid-stream: the view simply ends
            return resp


async def calls_elsewhere(request: web.Request) -> list[dict[str, Any]]:
    """The live calls the other workers hold, for the call list: what the store knows
    of them; their readings and alerts come live on the WebSocket from the bus."""
    link = request.app.get(LINK)
    if link is None:
        return []
    rt = runtime_of(request)
    now = time.time()
    out = []
    for rec in await rt.store.run(rt.store.store.calls_held_elsewhere, link.worker_id):
        started = (rec.started_at if rec.started_at.tzinfo
                   else rec.started_at.replace(tzinfo=dt.UTC)).timestamp()
        out.append({"call_id": rec.id, "consent_analysis": rec.consent_analysis,
                    "started_at": started, "duration_s": round(now - started, 1),
                    "anger_index": None, "level": None, "emotion": None, "spark": [],
                    "open_escalation": None, "worker": rec.worker})
    return out


def _handler(app: web.Application, ops: Operators) -> Any:
    async def handle(cmd: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        call_id = str(cmd.get("call_id"))
        session = ops.calls(app).get(call_id)
        if session is None or session.end_reason is not None:
            return 404, {"error": f"no call {call_id!r} in progress"}
        if cmd.get("op") == "say":
            return 202, await takeover(ops.services(app), session, str(cmd["operator"]),
                                       str(cmd["text"]))
        if cmd.get("op") == "end":
            await session.close("operator")
            return 200, {"call_id": call_id, "ended": True}
        return 400, {"error": "unknown command"}
    return handle


async def commands_ctx(app: web.Application) -> AsyncIterator[None]:
    """Listen for commands to this worker's calls, for as long as the app runs."""
    ops = app[OPS]
    cfg = ops.config
    if cfg.bus.url is None or cfg.cluster.worker_id is None:
        yield
        return
    link = CommandLink(cfg.bus.url, cfg.bus.channel, cfg.cluster.worker_id)
    await link.start(_handler(app, ops))
    app[LINK] = link
    try:
        yield
    finally:
        await link.aclose()
