"""Operator login and logout: throttled, hashed on one thread, sessions server-side.

A failed login backs off its name and its client (operators/throttle.py) before any
password is hashed; argon2 runs on the operators' single hashing thread, never on
the cores the calls' media uses; a login opens a server-side session
(operators/sessions.py) that logout ends.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from avatar_agent.core.api import LoginBody, api, read_body
from avatar_agent.core.calls import CallServices
from avatar_agent.core.httpjson import error
from avatar_agent.operators.auth import (
    DUMMY_HASH,
    MAX_PASSWORD,
    TokenClaims,
    valid_name,
    verify_password,
)
from avatar_agent.operators.http import COOKIE, SESSION, ops_of, runtime_of
from avatar_agent.operators.sessions import SessionStore

log = logging.getLogger(__name__)
JSON = "application/json"

MAX_HASHES_WAITING = 8  # logins queued for the hashing thread; beyond, 429 at once


def _too_many(wait_s: float, why: str) -> web.Response:
    resp = error(429, why)
    resp.headers["Retry-After"] = str(max(1, round(wait_s)))
    return resp


@api("log in: a token (also set as a cookie) for the operator routes", body=LoginBody,
     responses={200: ("the token", JSON)})
async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginBody)
    if isinstance(body, web.Response):
        return body
    name, password = body.name, body.password
    if len(password) > MAX_PASSWORD or not valid_name(name):
        return error(401, "wrong name or password")
    ops = ops_of(request)
    # Throttled before any hashing: a locked-out guesser costs no argon2 at all.
    name_key, client_key = [f"name:{name}"], [f"client:{request.remote}"]
    now = time.time()
    wait = max(ops.name_throttle.wait_s(name_key, now),
               ops.client_throttle.wait_s(client_key, now))
    if wait > 0:
        return _too_many(wait, "too many failed logins, try again later")
    if ops.hashes_waiting >= MAX_HASHES_WAITING:
        return _too_many(1, "too many logins in progress, try again later")
    rt = runtime_of(request)
    stored = await rt.store.run(rt.store.store.operator_hash, name)
    loop = asyncio.get_running_loop()
    # argon2 is deliberately slow: in its own thread, and run even for unknown names.
    ops.hashes_waiting += 1
    try:
        ok = await loop.run_in_executor(
            ops.hash_pool, verify_password, stored or DUMMY_HASH, password)
    finally:
        ops.hashes_waiting -= 1
    now = time.time()
    if not ok or stored is None:
        ops.name_throttle.failed(name_key, now)
        ops.client_throttle.failed(client_key, now)
        log.info("failed operator login for %r", name)
        return error(401, "wrong name or password")
    ops.name_throttle.succeeded(name_key[0])
    assert ops.sessions is not None  # opened at start-up
    sid = await rt.store.run(ops.sessions.open, name, now, ops.signer.ttl_s)
    token = ops.signer.issue(name, now, sid)
    resp = web.json_response({"token": token, "name": name, "expires_in_s": ops.signer.ttl_s})
    resp.set_cookie(COOKIE, token, max_age=int(ops.signer.ttl_s), httponly=True,
                    samesite="Strict", secure=request.secure, path="/")
    log.info("operator %s logged in", name)
    return resp


@api("log out: the token's session ends", responses={200: ("logged out", JSON)})
async def logout(request: web.Request) -> web.Response:
    claims = request.get(SESSION)
    ops = ops_of(request)
    if isinstance(claims, TokenClaims) and ops.sessions is not None:
        rt = runtime_of(request)
        await rt.store.run(ops.sessions.end, claims.sid)  # the token stops working now
    resp = web.json_response({"logged_out": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def purge_sessions(rt: CallServices, sessions: SessionStore) -> None:
    """Expired sessions out of the table, hourly (they are refused by time anyway)."""
    while True:
        try:
            await rt.store.run(sessions.purge, time.time())
        except Exception:  # retried at the next round; sessions still expire by time
            log.exception("purging expired operator sessions failed")
        await asyncio.sleep(3600)
