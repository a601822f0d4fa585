"""Operator authentication: argon2 password hashes and signed, expiring login tokens.

Pure: no clock (callers pass `now`, seconds since the epoch) and no I/O, so expiry
and forgery are tested without waiting or a server.

A token is `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))` with
payload `{"sub": name, "exp": unix seconds, "sid": session id}`. The signature turns
away forged tokens for the cost of a hash; the session id is then looked up
server-side (operators/sessions.py), so logout and revocation end a token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this stops a multi-megabyte "password"

_hasher = PasswordHasher()


class AuthError(Exception):
    """Why a token was refused; the message is safe to show to the client."""


def valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name))


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Checked against when the operator does not exist, so a wrong name takes as long as
# a wrong password and the response time does not tell which names exist.
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    name: str
    expires: float
    sid: str = ""  # the server-side session; a token without one is never accepted


class TokenSigner:
    def __init__(self, secret: bytes, ttl_s: float) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret needs at least 32 bytes")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._secret = secret
        self.ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, name: str, now: float, sid: str = "") -> str:
        body = json.dumps({"sub": name, "exp": now + self.ttl_s, "sid": sid},
                          separators=(",", ":"))
        payload = _b64(body.encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: float) -> TokenClaims:
        """The token's claims; raises AuthError if it is malformed, forged or expired."""
        payload, dot, sig = token.partition(".")
        if not dot or not payload or not sig or len(token) > 1024:
            raise AuthError("malformed token")
        try:
            payload.encode("ascii")
        except UnicodeEncodeError:
            raise AuthError("malformed token") from None
        if not hmac.compare_digest(sig, self._sign(payload)):
            raise AuthError("invalid token signature")
        try:
            claims = json.loads(_unb64(payload))
            name, exp, sid = claims["sub"], claims["exp"], claims.get("sid", "")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuthError("malformed token") from None
        if not isinstance(name, str) or not isinstance(exp, int | float) \
                or not isinstance(sid, str):
            raise AuthError("malformed token")
        if now >= exp:
            raise AuthError("token expired")
        return TokenClaims(name, float(exp), sid)
