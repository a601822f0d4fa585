"""What every operator route shares: the app's operator state, and who may call.

An operator is `Authorization: Bearer <token>`, the session cookie set at login, or
(for a WebSocket or an image, where browsers cannot set headers) `?token=`.

Calls and the server's shared services are reached through `core.calls`' protocols,
never the session or runtime classes themselves.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from avatar_agent.core.aio import TaskSet
from avatar_agent.core.calls import CallServices, LiveCall, LiveCalls
from avatar_agent.core.config import Config
from avatar_agent.core.httpjson import error, read_page
from avatar_agent.operators.auth import AuthError, TokenClaims, TokenSigner
from avatar_agent.operators.watcher import EscalationWatcher

COOKIE = "avatar_operator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Where the app keeps the runtime and the live calls (under its own keys, as its own
# types); operators need them only as `core.calls` describes them.
ServicesOf = Callable[[web.Application], CallServices]
CallsOf = Callable[[web.Application], LiveCalls]


class Operators:
    """The operator side of one app: token signer, escalation watcher, background tasks."""

    def __init__(self, config: Config, services: ServicesOf, calls: CallsOf) -> None:
        cfg = config.operators
        secret = cfg.token_secret.encode() if cfg.token_secret else secrets.token_bytes(32)
        self.config = config
        self.signer = TokenSigner(secret, cfg.token_ttl_h * 3600)
        self.services = services
        self.calls = calls
        self.watcher: EscalationWatcher | None = None
        self.tasks = TaskSet("operators")
        self.page = read_page("operator.html")


OPS: web.AppKey[Operators] = web.AppKey("operators", Operators)


def ops_of(request: web.Request) -> Operators:
    return request.app[OPS]


def runtime_of(request: web.Request) -> CallServices:
    return ops_of(request).services(request.app)


def calls_of(request: web.Request) -> LiveCalls:
    return ops_of(request).calls(request.app)


def _token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE) or None


def authenticate(request: web.Request, allow_query: bool = False) -> TokenClaims:
    token = _token_of(request)
    if token is None and allow_query:
        token = request.query.get("token") or None
    if token is None:
        raise AuthError("operator login required")
    return ops_of(request).signer.verify(token, time.time())


def operator_only(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            claims = authenticate(request)
        except AuthError as exc:
            return error(401, str(exc))
        request["operator"] = claims.name
        return await handler(request)
    return wrapped


def live_call(request: web.Request) -> LiveCall | web.Response:
    call_id = request.match_info["call_id"]
    session = calls_of(request).get(call_id)
    if session is None or session.end_reason is not None:
        return error(404, f"no call {call_id!r} in progress")
    return session
