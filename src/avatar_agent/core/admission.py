"""Who may open a call, and how many: join tokens, per-client rates and slots.

Pure: no clock (callers pass `now`, seconds) and no I/O, so floods are tested in
virtual time. The page asks for a join token (`POST /api/join`), which is short-lived
and single-use, and sends it with its offer. Join requests and offers are rate-limited
per client; each client may hold only a few calls, and fewer still that have not
connected yet (half-open). Half-open calls also have their own, smaller share of the
server's calls, so neither one client nor a crowd of offers that never connect can
take the slots that real, connected customers use.
"""

from __future__ import annotations

import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass


class RateLimiter:
    """A token bucket per key: `burst` at once, refilled at `per_min` a minute.

    At most `max_keys` keys are kept (the least recently used goes first), so a flood
    of distinct clients cannot grow memory; a dropped key starts with a full bucket.
    """

    def __init__(self, per_min: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = per_min / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (level, at)

    def allow(self, key: str, now: float) -> bool:
        level, at = self._buckets.pop(key, (self.burst, now))
        level = min(self.burst, level + (now - at) * self.rate)
        ok = level >= 1.0
        self._buckets[key] = (level - 1.0 if ok else level, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok


class JoinTokens:
    """Single-use tokens that expire after `ttl_s`; at most `max_open` outstanding
    (the oldest is dropped first: its page just asks again)."""

    def __init__(self, ttl_s: float, max_open: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_open = max_open
        self._open: OrderedDict[str, float] = OrderedDict()  # token -> expiry

    def issue(self, now: float) -> str:
        while self._open and next(iter(self._open.values())) <= now:
            self._open.popitem(last=False)  # expired (issued in order, so oldest first)
        token = secrets.token_urlsafe(24)
        self._open[token] = now + self.ttl_s
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return token

    def consume(self, token: str, now: float) -> bool:
        """True once for a token issued here less than `ttl_s` ago."""
        expires = self._open.pop(token, None)
        return expires is not None and now < expires


@dataclass(frozen=True)
class Slots:
    """What a new call would join: the server's calls and those of its client."""

    calls: int  # every call in progress
    half_open: int  # of which not connected yet
    client_calls: int
    client_half_open: int


def call_capacity(max_calls: int, call_cores: float | None, cores: float,
                  utilisation: float) -> int:
    """Calls this machine carries at full quality: the cores it may use over the CPU
    one full call was measured to take, at least 1 and at most `max_calls`.

    `call_cores` None means no CPU budget: `max_calls` alone.
    """
    if call_cores is None:
        return max_calls
    return max(1, min(max_calls, math.floor(cores * utilisation / call_cores + 1e-9)))


def budget_for(calls_held: int, cores: float, utilisation: float) -> float:
    """The `call_cores` that admits exactly `calls_held` calls on `cores` at
    `utilisation`: what to set after a benchmark saw that many full calls hold on this
    machine (and one more not). Halfway between the budgets of `calls_held` and of one
    more call, so rounding either way keeps the count."""
    if calls_held < 1:
        raise ValueError("a budget needs at least one call that held")
    return round(cores * utilisation / (calls_held + 0.5), 4)


@dataclass(frozen=True)
class Limits:
    max_calls: int
    max_half_open: int
    max_calls_per_client: int
    max_half_open_per_client: int


def refusal(slots: Slots, limits: Limits) -> tuple[int, str] | None:
    """(HTTP status, reason) if a new call may not start now, else None.

    The client's own limits come first (429: that client should slow down), then the
    server's (503: everyone waits).
    """
    if slots.client_half_open >= limits.max_half_open_per_client:
        return 429, "too many calls from this client are still connecting"
    if slots.client_calls >= limits.max_calls_per_client:
        return 429, "too many calls from this client"
    if slots.calls >= limits.max_calls:
        return 503, "too many calls in progress, try again later"
    if slots.half_open >= limits.max_half_open:
        return 503, "too many calls are connecting, try again shortly"
    return None
