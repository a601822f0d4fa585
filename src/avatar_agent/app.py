"""aiohttp application: routes, static pages, and the lifecycle of the shared runtime."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from avatar_agent.core.admission import (
    JoinTokens,
    Limits,
    RateLimiter,
    Slots,
    call_capacity,
    refusal,
)
from avatar_agent.core.api import OfferBody, api, openapi, read_body
from avatar_agent.core.cluster import membership, worker_header
from avatar_agent.core.config import Config, ServerConfig
from avatar_agent.core.httpjson import WEB_DIR, error, inject_config, read_page
from avatar_agent.core.memory import release_free_memory
from avatar_agent.core.turn import turn_ice_server
from avatar_agent.core.websecurity import security_headers
from avatar_agent.operators import routes as operator_routes
from avatar_agent.operators import tuning
from avatar_agent.runtime import Runtime
from avatar_agent.session import CallSession
from avatar_agent.transport.webrtc import OfferError

log = logging.getLogger(__name__)

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
CALLS: web.AppKey[dict[str, CallSession]] = web.AppKey("calls", dict)
CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
PAGE: web.AppKey[str] = web.AppKey("page", str)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """API clients get JSON errors, never aiohttp's HTML pages."""
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return error(exc.status, exc.reason or "error")
    except Exception:
        if not request.path.startswith("/api/"):
            raise
        # never a traceback page: the details go to the log, not to the client
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error")


async def index(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    ice = [s.model_dump(exclude_none=True) for s in cfg.server.ice_servers]
    if cfg.server.turn is not None:  # fresh, time-limited credentials with every page
        ice.append(turn_ice_server(cfg.server.turn, time.time()))
    page_cfg = {
        "iceServers": ice,
        "greeting": cfg.tts.greeting,
        "operatorMaySeeCamera": cfg.operators.show_customer_video,
    }
    return web.Response(text=inject_config(request.app[PAGE], page_cfg), content_type="text/html")


async def _read_offer(request: web.Request, limit: int) -> OfferBody | web.Response:
    return await read_body(request, OfferBody, limit)


@dataclass
class Gate:
    """Admission state of one server (rules in core.admission): join tokens, per-client
    rates, and which client opened each call in progress."""

    cfg: ServerConfig
    tokens: JoinTokens = field(init=False)
    joins: RateLimiter = field(init=False)
    offers: RateLimiter = field(init=False)
    client_of_call: dict[str, str] = field(default_factory=dict)
    call_limit: int = field(init=False)  # max_calls, or fewer when the CPU budget says so

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.call_limit = call_capacity(cfg.max_calls, cfg.call_cores,
                                        cfg.cores or os.cpu_count() or 1, cfg.utilisation)
        self.tokens = JoinTokens(self.cfg.join_token_ttl_s)
        # bursts of 10 s worth, at least 5: a page that retries must not be cut off
        burst = max(5, round(self.cfg.joins_per_client_per_min / 6))
        self.joins = RateLimiter(self.cfg.joins_per_client_per_min, burst=burst)
        self.offers = RateLimiter(self.cfg.joins_per_client_per_min, burst=burst)

    def client(self, request: web.Request) -> str:
        """Who is asking: the peer's address, or the address a trusted proxy forwards."""
        peer = request.remote or "?"
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and peer in self.cfg.trusted_proxies:
            return forwarded.split(",")[-1].strip() or peer  # the hop our proxy saw
        return peer

    def refusal(self, client: str, calls: dict[str, CallSession]) -> tuple[int, str] | None:
        mine = [s for c, s in calls.items() if self.client_of_call.get(c) == client]
        cfg = self.cfg
        return refusal(
            Slots(calls=len(calls), half_open=sum(not s.media_flowing for s in calls.values()),
                  client_calls=len(mine), client_half_open=sum(not s.media_flowing for s in mine)),
            Limits(self.call_limit, min(cfg.max_half_open, self.call_limit),
                   cfg.max_calls_per_client, cfg.max_half_open_per_client))


GATE: web.AppKey[Gate] = web.AppKey("gate", Gate)
JSON = "application/json"


def _slow_down(status: int, why: str) -> web.Response:
    resp = error(status, why)
    resp.headers["Retry-After"] = "5"
    return resp


@api("a single-use join token for one offer",
     responses={201: ("the token", JSON), 503: ("at the call limit", JSON)})
async def join(request: web.Request) -> web.Response:
    """A single-use token for one offer: the page asks for it just before it offers."""
    gate = request.app[GATE]
    if not gate.joins.allow(gate.client(request), time.monotonic()):
        return _slow_down(429, "too many join requests from this client")
    if len(request.app[CALLS]) >= gate.call_limit:
        # full: refused before the token, so a front in front of several workers sends
        # the customer to the next one (their offer goes where their token was issued)
        return _slow_down(503, "this server is at its call limit")
    token = gate.tokens.issue(time.monotonic())
    return web.json_response(
        {"join_token": token, "expires_in_s": gate.cfg.join_token_ttl_s}, status=201)


@api("start a call: the page's offer in, the server's answer out", body=OfferBody,
     responses={201: ("the call and its SDP answer", JSON)})
async def create_call(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    calls = request.app[CALLS]
    data = await _read_offer(request, rt.config.server.max_body_bytes)
    if isinstance(data, web.Response):
        return data
    gate = request.app[GATE]
    token = data.join_token
    if token is None or not gate.tokens.consume(token, time.monotonic()):
        return error(403, "a valid 'join_token' is required (POST /api/join first)")
    client = gate.client(request)
    if not gate.offers.allow(client, time.monotonic()):
        return _slow_down(429, "too many offers from this client")
    refused = gate.refusal(client, calls)
    if refused is not None:
        return _slow_down(*refused)
    call_id = uuid.uuid4().hex
    consent = data.consent.analysis
    session = CallSession(call_id, consent, rt, on_closed=lambda s: _closed(request.app, s))
    calls[call_id] = session
    gate.client_of_call[call_id] = client
    try:
        answer = await session.start(data.sdp, data.type)
    except OfferError as exc:
        calls.pop(call_id, None)
        gate.client_of_call.pop(call_id, None)
        return error(400, str(exc))
    except Exception:
        log.exception("call setup failed")
        await session.close("setup_failed")  # its peer and tasks may already exist
        calls.pop(call_id, None)
        gate.client_of_call.pop(call_id, None)
        return error(500, "the call could not be set up")
    rt.metrics.calls_live.set(len(calls))
    return web.json_response(
        {"call_id": call_id, "sdp": answer.sdp, "type": answer.type}, status=201
    )


def _closed(app: web.Application, session: CallSession) -> None:
    calls = app[CALLS]
    app[GATE].client_of_call.pop(session.call_id, None)
    if calls.pop(session.call_id, None) is not None:
        rt = app[RUNTIME]
        rt.metrics.calls_live.set(len(calls))
        rt.metrics.calls_ended.labels(session.end_reason or "unknown").inc()
        _release_memory_soon(app)


RELEASE_AFTER_S = 2.0
RELEASING: web.AppKey[list[bool]] = web.AppKey("releasing", list)


def _release_memory_soon(app: web.Application) -> None:
    """What ended calls freed goes back to the system (see core.memory): once for all
    the calls that end within RELEASE_AFTER_S, since a full collection briefly holds
    the interpreter."""
    pending = app[RELEASING]
    if pending:
        return
    pending.append(True)

    async def release() -> None:
        try:
            await asyncio.sleep(RELEASE_AFTER_S)
            await asyncio.to_thread(release_free_memory)
        finally:
            pending.clear()

    app[RUNTIME].tasks.spawn(release(), "release-memory")


@api("hang up a call", responses={200: ("ended", JSON)})
async def end_call(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    session = request.app[CALLS].get(call_id)
    if session is None:
        return error(404, f"no call {call_id!r} in progress")
    await session.close("hangup")
    return web.json_response({"call_id": call_id, "ended": True})


@api("liveness, calls and tasks in progress", responses={200: ("healthy", JSON)})
async def healthz(request: web.Request) -> web.Response:
    # Tasks alive in the process: lets an operator (and the tests) see that an ended
    # call left nothing running; face analysers are kept between calls (each with its
    # threads), as many as calls have run at once.
    return web.json_response(
        {"status": "ok", "calls": len(request.app[CALLS]), "tasks": len(asyncio.all_tasks()),
         "face_analyzers": request.app[RUNTIME].face_analyzers.alive}
    )


def _may_read_metrics(request: web.Request, token: str | None) -> bool:
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    if not _may_read_metrics(request, request.app[CONFIG].server.metrics_token):
        return error(401, "metrics need the metrics token (server.metrics_token)")
    body = request.app[RUNTIME].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


HEARTBEAT_S = 5.0  # how stale a crashed call's recorded end may be


async def _heartbeats(app: web.Application) -> None:
    """Record that the live calls are alive, so that after a crash each call ends at
    its last heartbeat rather than when the server came back."""
    rt = app[RUNTIME]
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        live = [c for c, s in app[CALLS].items() if s.end_reason is None]
        if live:
            try:
                await rt.store.run(rt.store.store.heartbeat, live)
            except Exception:  # the next beat tries again; the calls go on
                log.exception("recording the calls' heartbeat failed")


async def openapi_doc(request: web.Request) -> web.Response:
    """The API as OpenAPI 3.1, built from the routes and the models that validate them."""
    return web.json_response(openapi(request.app, "avatar-agent", "1"))


async def _runtime_ctx(app: web.Application) -> Any:
    rt = await Runtime.start(app[CONFIG])
    app[RUNTIME] = rt
    limit = app[GATE].call_limit
    rt.metrics.call_capacity.set(limit)
    rt.metrics.call_headroom.set_function(lambda: limit - len(app[CALLS]))
    rt.tasks.spawn(_heartbeats(app), "call-heartbeats")
    if app[CONFIG].cluster.worker_id is not None:
        rt.tasks.spawn(membership(rt.store, app[CONFIG].cluster, app[GATE].call_limit,
                                  lambda: len(app[CALLS]), rt.events), "cluster")
    yield
    sessions = list(app[CALLS].values())
    await asyncio.gather(*(s.close("server_shutdown") for s in sessions), return_exceptions=True)
    await rt.close()


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[CALLS] = {}
    app[GATE] = Gate(config.server)
    app[RELEASING] = []
    app[PAGE] = read_page("customer.html")
    app.on_response_prepare.append(security_headers)
    if config.cluster.worker_id is not None:  # the front routes a customer's offer by it
        app.on_response_prepare.append(worker_header(config.cluster.worker_id))
    app.cleanup_ctx.append(_runtime_ctx)
    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR)
    app.router.add_get("/api/openapi.json", openapi_doc)
    app.router.add_post("/api/join", join)
    app.router.add_post("/api/calls", create_call)
    app.router.add_delete("/api/calls/{call_id}", end_call)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    # after the runtime's cleanup context: the watcher and the purge need the runtime
    operator_routes.register(app, config, RUNTIME, CALLS)
    tuning.register(app, config)  # persona tuning page; its routes need the tuner role
    return app
