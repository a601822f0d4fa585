"""What every operator route shares: the app's operator state, and who may call.

An operator is `Authorization: Bearer <token>` or the session cookie set at login;
never a token in the URL, since URLs end up in access logs and browser history (the
WebSocket may instead send its token as its first message). A token's session must
still be live server-side: `session_check`, a middleware, looks it up once per request
so that `authenticate` itself stays a cheap, synchronous check.

Calls and the server's shared services are reached through `core.calls`' protocols,
never the session or runtime classes themselves.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from aiohttp import web

from avatar_agent.core.aio import TaskSet
from avatar_agent.core.calls import CallServices, LiveCall, LiveCalls
from avatar_agent.core.config import Config
from avatar_agent.core.httpjson import error, read_page
from avatar_agent.operators.auth import AuthError, TokenClaims, TokenSigner
from avatar_agent.operators.sessions import SessionStore
from avatar_agent.operators.throttle import LoginThrottle
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
        self.sessions: SessionStore | None = None  # on the runtime's store, at start-up
        # One thread for password hashing: argon2 is slow on purpose, and a login flood
        # must queue here rather than take the cores the calls' media runs on.
        self.hash_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="login-hash")
        self.hashes_waiting = 0
        self.name_throttle = LoginThrottle(free_tries=3, lock_after=10,
                                           lockout_s=cfg.login_lockout_min * 60)
        # several operators may share one address (an office behind NAT): more slack
        self.client_throttle = LoginThrottle(free_tries=10, lock_after=30,
                                             lockout_s=cfg.login_lockout_min * 60)


OPS: web.AppKey[Operators] = web.AppKey("operators", Operators)


def ops_of(request: web.Request) -> Operators:
    return request.app[OPS]


def runtime_of(request: web.Request) -> CallServices:
    return ops_of(request).services(request.app)


def calls_of(request: web.Request) -> LiveCalls:
    return ops_of(request).calls(request.app)


def token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE) or None


SESSION = "operator_session"  # request key: the claims, once their session was found live


def authenticate(request: web.Request) -> TokenClaims:
    """The request's operator; raises AuthError without a live session."""
    token = token_of(request)
    if token is None:
        raise AuthError("operator login required")
    claims = ops_of(request).signer.verify(token, time.time())
    if request.get(SESSION) != claims:
        raise AuthError("session ended, log in again")
    return claims


async def session_live(request: web.Request, token: str) -> TokenClaims:
    """The claims of `token` if it is well signed and its session is live server-side."""
    ops = ops_of(request)
    claims = ops.signer.verify(token, time.time())
    rt = runtime_of(request)
    if not claims.sid or ops.sessions is None or not await rt.store.run(
            ops.sessions.is_live, claims.sid, claims.name, time.time()):
        raise AuthError("session ended, log in again")
    return claims


@web.middleware
async def session_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Looks up the session of a request that carries a well-signed token, once."""
    token = token_of(request)
    if token is not None and OPS in request.app:
        # refused or not, `authenticate` gives the reason where a route needs a login
        with contextlib.suppress(AuthError):
            request[SESSION] = await session_live(request, token)
    return await handler(request)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def csrf_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A browser sends the login cookie with any site's request; a state-changing
    request that relies on it must come from our own pages: an `Origin` of this host,
    and a JSON body (a cross-site form or `text/plain` POST cannot set either)."""
    if (request.method not in SAFE_METHODS and COOKIE in request.cookies
            and "Authorization" not in request.headers):
        origin = request.headers.get("Origin")
        if origin is None or urlsplit(origin).netloc != request.host:
            return error(403, "cross-site request refused (Origin)")
        # only GET, HEAD and POST cross sites without a CORS preflight; of those only
        # POST changes anything
        if request.method == "POST" and request.content_type != "application/json":
            return error(403, "cross-site request refused (the body must be JSON)")
    return await handler(request)


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
