"""Handing freed memory back to the system after a call.

A call builds and drops large native buffers (the face mesh graphs, codecs, the
avatar's frames). glibc keeps what is freed in its per-thread heaps instead of
returning it, so a server's RSS climbed by hundreds of MB over a hundred short calls
with nothing alive; `malloc_trim` returns the free pages (where the C library is
glibc; elsewhere only the collection runs).

That is not all of it: glibc gives threads up to 8 heaps (arenas) per core, and each
arena keeps the free space of its busiest moment, which `malloc_trim` cannot hand back
where live chunks sit between free ones. The codec, render and analysis threads of
successive calls land in different arenas, so over a churn of calls every arena grows
to its own peak. Measured on a 2-core machine (16 arenas), after each round of 20
consenting calls opened and hung up: memory in use stayed at 348-350 MB while the
arenas' free space went 264 -> 435 -> 529 -> 572 -> 595 -> 604 MB and RSS, trimmed,
1,162 -> 1,177 -> 1,229 -> 1,262 -> 1,297 -> 1,304 MB. With one arena per core
(`limit_arenas`) the same churn stayed at 1,041 -> 1,054 -> 1,052 -> 1,038 MB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os

log = logging.getLogger(__name__)


def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_arenas(per_core: int = 1) -> bool:
    """Cap glibc's arenas at `per_core` a core (at least 2), unless MALLOC_ARENA_MAX
    is set (then glibc has read it already). Call it at start-up, before the worker
    pools start their threads: arenas that exist stay. True when the cap was set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    arenas = max(2, per_core * (os.cpu_count() or 1))
    ok = bool(mallopt(_M_ARENA_MAX, arenas))
    if ok:
        log.info("glibc arenas capped at %d", arenas)
    return ok


def release_free_memory() -> None:
    """Blocking (it walks the heaps): run it in a worker thread, and seldom.

    A finished call's objects form reference cycles, freed only by a full collection,
    which Python runs rarely; collect first, so that there is memory to return.
    """
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
