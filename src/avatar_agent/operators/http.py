"""What every operator route shares: the app's operator state, and who may call.

An operator is `Authorization: Bearer <token>`, the session cookie set at login, or
(for a WebSocket or an image, where browsers cannot set headers) `?token=`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from aiohttp import web

from avatar_agent.core.aio import TaskSet
from avatar_agent.core.config import Config
from avatar_agent.core.httpjson import error
from avatar_agent.operators.auth import AuthError, TokenClaims, TokenSigner
from avatar_agent.operators.watcher import EscalationWatcher
from avatar_agent.runtime import Runtime
from avatar_agent.session import CallSession

COOKIE = "avatar_operator"
WEB_DIR = Path(str(files("avatar_agent").joinpath("web")))
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Operators:
    """The operator side of one app: token signer, escalation watcher, background tasks."""

    def __init__(self, config: Config, runtime_key: web.AppKey[Runtime],
                 calls_key: web.AppKey[dict[str, CallSession]]) -> None:
        cfg = config.operators
        secret = cfg.token_secret.encode() if cfg.token_secret else secrets.token_bytes(32)
        self.config = config
        self.signer = TokenSigner(secret, cfg.token_ttl_h * 3600)
        self.runtime_key = runtime_key
        self.calls_key = calls_key
        self.watcher: EscalationWatcher | None = None
        self.tasks = TaskSet("operators")
        self.page = (WEB_DIR / "operator.html").read_text(encoding="utf-8")


OPS: web.AppKey[Operators] = web.AppKey("operators", Operators)


def ops_of(request: web.Request) -> Operators:
    return request.app[OPS]


def runtime_of(request: web.Request) -> Runtime:
    ops = ops_of(request)
    return request.app[ops.runtime_key]


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


def live_call(request: web.Request) -> CallSession | web.Response:
    call_id = request.match_info["call_id"]
    session = request.app[ops_of(request).calls_key].get(call_id)
    if session is None or session.end_reason is not None:
        return error(404, f"no call {call_id!r} in progress")
    return session
