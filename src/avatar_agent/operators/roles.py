"""Who may do what: an operator's role, and the check a route makes before it acts.

`operator` uses the dashboard; `tuner` also shapes the avatar's personas on the tuning
page; `admin` may do both. The role is read from the store on every guarded request
rather than carried in the login token, so taking a role away takes effect at once
(guarded routes are few and rarely called; the dashboard's stay a hash check).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from avatar_agent.core.httpjson import error
from avatar_agent.operators.auth import AuthError
from avatar_agent.operators.http import Handler, authenticate, runtime_of

ROLES = ("operator", "tuner", "admin")
TUNING_ROLES = frozenset({"tuner", "admin"})


def valid_role(role: str) -> bool:
    return role in ROLES


async def role_of(request: web.Request, name: str) -> str | None:
    store = runtime_of(request).store
    return await store.run(store.store.operator_role, name)


def require_role(*allowed: str) -> Callable[[Handler], Handler]:
    """A route for operators holding one of `allowed`: 401 without a login, 403 without the role."""
    unknown = set(allowed) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                claims = authenticate(request)
            except AuthError as exc:
                return error(401, str(exc))
            role = await role_of(request, claims.name)
            if role is None:
                return error(401, "operator no longer exists")
            if role not in allowed:
                return error(403, f"needs the role {' or '.join(allowed)}")
            request["operator"] = claims.name
            request["role"] = role
            return await handler(request)
        return wrapped
    return wrap
