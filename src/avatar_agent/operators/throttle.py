"""Login throttling: backoff, then a lockout, per operator name and per client.

Pure: no clock (callers pass `now`) and no I/O. A key is a name ("name:alice") or a
client ("client:203.0.113.9"); a login is refused while any of its keys waits. The
first `free_tries` - 1 failures cost nothing; from the `free_tries`th on, each one
doubles the wait (from `base_s`), and `lock_after` failures lock the key for
`lockout_s`. Success clears the name (not the client: one good password must not
reset a client guessing others). Failures are forgotten `lockout_s` after the last
one; at most `max_keys` keys are kept, oldest dropped first, so a flood of names
cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int
    last: float
    until: float  # no try before this


class LoginThrottle:
    def __init__(self, free_tries: int = 3, base_s: float = 1.0, lock_after: int = 10,
                 lockout_s: float = 900.0, max_keys: int = 10_000) -> None:
        self.free_tries = free_tries
        self.base_s = base_s
        self.lock_after = lock_after
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Record] = OrderedDict()

    def wait_s(self, keys: list[str], now: float) -> float:
        """Seconds before a login with these keys may be tried; 0 means now."""
        wait = 0.0
        for key in keys:
            rec = self._keys.get(key)
            if rec is None:
                continue
            if now - rec.last >= self.lockout_s:
                del self._keys[key]
                continue
            wait = max(wait, rec.until - now)
        return max(0.0, wait)

    def failed(self, keys: list[str], now: float) -> None:
        for key in keys:
            rec = self._keys.pop(key, None)
            if rec is None or now - rec.last >= self.lockout_s:
                rec = _Record(0, now, now)
            rec.failures += 1
            rec.last = now
            if rec.failures >= self.lock_after:
                rec.until = now + self.lockout_s
            elif rec.failures >= self.free_tries:
                rec.until = now + self.base_s * 2 ** (rec.failures - self.free_tries)
            self._keys[key] = rec  # to the end: the newest is dropped last
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def succeeded(self, name_key: str) -> None:
        self._keys.pop(name_key, None)
