"""Operator HTTP and WebSocket routes, registered on the app by `register`.

Every route here except the login itself and the static dashboard page requires an
operator (see `operators.http`); anything else is 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from avatar_agent.core.api import SayBody, api, read_body
from avatar_agent.core.calls import CallServices, LiveCall
from avatar_agent.core.config import Config
from avatar_agent.core.events import EscalationAcknowledged, encode
from avatar_agent.core.httpjson import error, inject_config
from avatar_agent.operators.auth import (
    AuthError,
    TokenClaims,
)
from avatar_agent.operators.http import (
    OPS,
    Operators,
    authenticate,
    calls_of,
    csrf_check,
    live_call,
    operator_only,
    ops_of,
    runtime_of,
    session_check,
    session_live,
    token_of,
)
from avatar_agent.operators.login import login, logout, purge_sessions
from avatar_agent.operators.remote import calls_elsewhere, commands_ctx, forward, takeover
from avatar_agent.operators.retention import run_retention
from avatar_agent.operators.review import timeline_csv, timeline_png
from avatar_agent.operators.roles import role_of
from avatar_agent.operators.sessions import SessionStore
from avatar_agent.operators.video import customer_video
from avatar_agent.operators.watcher import EscalationWatcher

log = logging.getLogger(__name__)
AFFECT_KINDS = frozenset({"level", "micro_expression"})
JSON = "application/json"
# What the app hands `register`: its runtime and its live calls, of whatever types
# satisfy the protocols operators use.
ServicesT = TypeVar("ServicesT", bound=CallServices)
CallsT = TypeVar("CallsT", bound=Mapping[str, LiveCall])


# --- who is logged in -------------------------------------------------------------

@api("the operator logged in", operator=True, responses={200: ("the name", JSON)})
@operator_only
async def whoami(request: web.Request) -> web.Response:
    """Who is signed in, and their role: the dashboard offers the tuning page to
    tuners and admins."""
    role = await role_of(request, request["operator"])
    return web.json_response({"name": request["operator"], "role": role})


# --- live calls -----------------------------------------------------------------------

def _call_summary(ops: Operators, session: LiveCall) -> dict[str, Any]:
    ctx = ops.watcher.calls.get(session.call_id) if ops.watcher else None
    last = session.affect.last_update if session.affect is not None else None
    esc = ctx.open_escalation if ctx is not None else None
    return {
        "call_id": session.call_id,
        "consent_analysis": session.consent_analysis,
        "started_at": session.started_at,
        "duration_s": round(time.time() - session.started_at, 1),
        "anger_index": round(last.anger_index, 1) if last is not None else None,
        "level": last.level if last is not None else None,
        "emotion": last.emotion if last is not None else None,
        "spark": ctx.spark() if ctx is not None and session.consent_analysis else [],
        # the alert as the dashboard got it, less its context (the call list stays small)
        "open_escalation": ({k: v for k, v in encode(esc).items() if k != "context"}
                            if esc is not None else None),
    }


@api("calls in progress", operator=True, responses={200: ("calls", JSON)})
@operator_only
async def list_calls(request: web.Request) -> web.Response:
    ops = ops_of(request)
    calls = calls_of(request)
    here = [_call_summary(ops, s) for s in calls.values()]
    return web.json_response({"calls": here + await calls_elsewhere(request),
                              "show_customer_video": ops.config.operators.show_customer_video})


@api("ended calls, newest first", operator=True, responses={200: ("calls", JSON)})
@operator_only
async def history(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    rows = await rt.store.run(rt.store.store.list_calls, 200, True)
    return web.json_response({"calls": [
        {"call_id": r.id, "started_at": r.started_at.isoformat(),
         "ended_at": r.ended_at.isoformat() if r.ended_at else None,
         "end_reason": r.end_reason, "consent_analysis": r.consent_analysis} for r in rows
    ]})


async def _timeline(request: web.Request) -> dict[str, Any] | web.Response:
    call_id = request.match_info["call_id"]
    rt = runtime_of(request)
    store = rt.store.store
    record = await rt.store.run(store.get_call, call_id)
    if record is None:
        return error(404, f"no call {call_id!r}")
    session = calls_of(request).get(call_id)
    events = await rt.store.run(store.events, call_id)
    points: list[dict[str, Any]] = []
    if record.consent_analysis:
        points = await rt.store.run(store.affect_points, call_id)
        if session is not None and session.affect is not None:
            points += session.affect.curve  # not yet written: the store is 2 s behind
            events += session.affect.events
            events.sort(key=lambda e: float(e["t"]))
    else:
        # Without consent nothing about the customer's affect may leave the server.
        events = [e for e in events if e["kind"] not in AFFECT_KINDS]
    escalations = await rt.store.run(store.escalations, call_id)
    return {
        "call": {"id": record.id, "started_at": record.started_at.isoformat(),
                 "ended_at": record.ended_at.isoformat() if record.ended_at else None,
                 "end_reason": record.end_reason, "consent_analysis": record.consent_analysis,
                 "live": session is not None},
        "points": points,
        "events": events,
        # Both sides: the customer's recognised words, the avatar's (and an operator's
        # through it) captions.
        "transcript": [{"t": e["t"], "text": e.get("text", ""),
                        "role": "customer" if e["kind"] == "transcript" else "agent",
                        "who": _WHO[e["kind"]]}
                       for e in events if e["kind"] in _WHO],
        "escalations": escalations,
    }


_WHO = {"caption": "avatar", "takeover": "operator", "transcript": "customer"}


@api("a call's affect curve, events and transcript", operator=True,
     responses={200: ("the timeline", JSON)})
@operator_only
async def timeline(request: web.Request) -> web.Response:
    tl = await _timeline(request)
    return tl if isinstance(tl, web.Response) else web.json_response(tl)


def _attachment(call_id: str, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="call-{call_id}.{ext}"'}


@api("a call's timeline as a file", operator=True,
     responses={200: ("JSON or CSV", "application/octet-stream")})
@operator_only
async def export(request: web.Request) -> web.Response:
    tl = await _timeline(request)
    if isinstance(tl, web.Response):
        return tl
    call_id = request.match_info["call_id"]
    fmt = request.match_info["fmt"]
    if fmt == "json":
        return web.Response(text=json.dumps(tl, indent=1), content_type="application/json",
                            headers=_attachment(call_id, "json"))
    return web.Response(text=timeline_csv(tl), content_type="text/csv",
                        headers=_attachment(call_id, "csv"))


@api("a call's affect curve as an image", operator=True,
     responses={200: ("the plot", "image/png")})
@operator_only
async def plot(request: web.Request) -> web.Response:
    tl = await _timeline(request)
    if isinstance(tl, web.Response):
        return tl
    rt = runtime_of(request)
    png = await asyncio.get_running_loop().run_in_executor(rt.render_pool, timeline_png, tl)
    return web.Response(body=png, content_type="image/png")


# --- takeover -------------------------------------------------------------------------

@api("take over: the avatar says this text", body=SayBody, operator=True,
     responses={202: ("queued", JSON)})
@operator_only
async def say(request: web.Request) -> web.Response:
    body = await read_body(request, SayBody)
    if isinstance(body, web.Response):
        return body
    text = " ".join(body.text.split())
    limit = ops_of(request).config.operators.max_say_chars
    if not text:
        return error(400, "'text' is empty")
    if len(text) > limit:
        return error(413, f"'text' is over {limit} characters")
    session = live_call(request)
    if isinstance(session, web.Response):  # perhaps held by another worker
        return await forward(request, session, "say", operator=request["operator"], text=text)
    return web.json_response(await takeover(runtime_of(request), session,
                                            request["operator"], text), status=202)


@api("end a call as its operator", operator=True, responses={200: ("ended", JSON)})
@operator_only
async def end(request: web.Request) -> web.Response:
    session = live_call(request)
    if isinstance(session, web.Response):  # perhaps held by another worker
        return await forward(request, session, "end")
    await session.close("operator")
    return web.json_response({"call_id": session.call_id, "ended": True})


@api("take an escalation", operator=True, responses={200: ("the escalation", JSON)})
@operator_only
async def acknowledge(request: web.Request) -> web.Response:
    try:
        esc_id = int(request.match_info["esc_id"])
    except ValueError:
        return error(404, "no such escalation")
    rt = runtime_of(request)
    row = await rt.store.run(rt.store.store.acknowledge, esc_id, request["operator"])
    if row is None:
        return error(404, f"no escalation {esc_id}")
    rt.events.publish(EscalationAcknowledged(
        call_id=row["call_id"], id=row["id"], acknowledged_by=row["acknowledged_by"],
        acknowledged_at=row["acknowledged_at"]))
    return web.json_response(row)


@api("escalations nobody has taken", operator=True,
     responses={200: ("escalations", JSON)})
@operator_only
async def open_escalations(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    rows = await rt.store.run(rt.store.store.escalations, None, True)
    return web.json_response({"escalations": rows})


# --- live events ----------------------------------------------------------------------

WS_AUTH_TIMEOUT_S = 5.0


async def _first_message_auth(request: web.Request, ws: web.WebSocketResponse
                              ) -> TokenClaims | None:
    """Without a cookie or header, the socket's first message carries the token:
    `{"type": "auth", "token": "..."}` (never the URL, which access logs keep)."""
    try:
        msg = await ws.receive(timeout=WS_AUTH_TIMEOUT_S)
        data = json.loads(msg.data) if msg.type == WSMsgType.TEXT else None
        if isinstance(data, dict) and data.get("type") == "auth" \
                and isinstance(data.get("token"), str):
            return await session_live(request, data["token"])
    except (TimeoutError, ValueError, RecursionError, AuthError):
        pass
    await ws.close(code=4001, message=b"operator login required")
    return None


async def events_ws(request: web.Request) -> web.StreamResponse:
    pre: TokenClaims | None = None
    if token_of(request) is not None:  # cookie or header: checked before the upgrade
        try:
            pre = authenticate(request)
        except AuthError as exc:
            return error(401, str(exc))
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    claims = pre or await _first_message_auth(request, ws)
    if claims is None:
        return ws
    rt = runtime_of(request)

    async def drain_incoming() -> None:
        async for msg in ws:  # the dashboard sends nothing; this notices it leaving
            if msg.type == WSMsgType.ERROR:
                return

    reader = asyncio.ensure_future(drain_incoming())
    try:
        # `hello` exists only on this socket, not on the bus: no event type of its own
        await ws.send_json({"type": "hello", "operator": claims.name})
        with rt.events.subscribe(maxsize=1024) as sub:
            while not ws.closed and not reader.done():
                left = claims.expires - time.time()
                if left <= 0:
                    await ws.close(code=4001, message=b"token expired")
                    break
                try:
                    ev = await asyncio.wait_for(sub.get(), timeout=min(left, 5.0))
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    break
                await ws.send_str(json.dumps(encode(ev), separators=(",", ":")))
    except (ConnectionResetError, RuntimeError):
        pass  # the dashboard went away mid-send
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        if not ws.closed:
            await ws.close()
    return ws


async def dashboard(request: web.Request) -> web.Response:
    ops = ops_of(request)
    html = inject_config(ops.page, {
        "maxSayChars": ops.config.operators.max_say_chars,
        "showCustomerVideo": ops.config.operators.show_customer_video})
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def _lifecycle(app: web.Application) -> Any:
    ops = app[OPS]
    rt = ops.services(app)
    ops.watcher = EscalationWatcher(ops.config.escalation, rt.events, rt.store)
    ops.tasks.spawn(ops.watcher.run(), "escalation-watcher")
    ops.tasks.spawn(run_retention(rt.store, ops.config.privacy), "retention")
    ops.sessions = await rt.store.run(SessionStore, rt.store.store.engine)
    ops.tasks.spawn(purge_sessions(rt, ops.sessions), "session-purge")
    yield
    await ops.tasks.cancel_all()
    ops.hash_pool.shutdown(wait=True, cancel_futures=True)


def register(app: web.Application, config: Config, runtime_key: web.AppKey[ServicesT],
             calls_key: web.AppKey[CallsT]) -> None:
    """Operator routes and background tasks; call after the runtime's cleanup context.

    `runtime_key` and `calls_key` are where the app keeps its runtime and its live
    calls by id; operators use them only through `core.calls`' protocols.
    """
    def services(a: web.Application) -> ServicesT:
        return a[runtime_key]

    def calls(a: web.Application) -> CallsT:
        return a[calls_key]

    app[OPS] = Operators(config, services, calls)
    app.middlewares.append(csrf_check)
    app.middlewares.append(session_check)
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(commands_ctx)
    r = app.router
    r.add_get("/operator", dashboard)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_get("/api/me", whoami)
    r.add_get("/api/calls", list_calls)
    r.add_get("/api/history", history)
    r.add_get("/api/calls/{call_id}/timeline", timeline)
    r.add_get("/api/calls/{call_id}/export.{fmt:json|csv}", export)
    r.add_get("/api/calls/{call_id}/plot.png", plot)
    r.add_post("/api/calls/{call_id}/say", say)
    r.add_post("/api/calls/{call_id}/end", end)
    r.add_get("/api/calls/{call_id}/video.mjpeg", customer_video)
    r.add_get("/api/escalations", open_escalations)
    r.add_post("/api/escalations/{esc_id}/ack", acknowledge)
    r.add_get("/api/events", events_ws)
