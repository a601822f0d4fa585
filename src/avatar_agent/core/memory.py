"""Handing freed memory back to the system after a call.

A call builds and drops large native buffers (the face mesh graphs, codecs, the
avatar's frames). glibc keeps what is freed in its per-thread heaps instead of
returning it, so a server's RSS climbed by hundreds of MB over a hundred short calls
with nothing alive; `malloc_trim` returns the free pages (where the C library is
glibc; elsewhere only the collection runs).

That is not all of it, and the rest is not a leak (it was mostly the face meshes
built and freed for every call, which are now kept between calls:
`perception.face_pool`): glibc gives threads up to 8 heaps
(arenas) per core, and each arena keeps the free space of its busiest moment, which
`malloc_trim` cannot hand back where live chunks sit between free ones. The codec,
render and analysis threads of successive calls land in different arenas, so over a
churn of calls each arena grows to its own peak, then stays there. Measured on a
2-core machine (16 arenas), after each of five rounds of 20 consenting calls opened
and hung up: memory in use 348-350 MB throughout, the arenas' free space 264 -> 435
-> 529 -> 572 -> 595 -> 604 MB (levelling off), RSS after a trim 1,162 -> 1,177 ->
1,229 -> 1,262 -> 1,297 -> 1,304 MB. Capping the arenas at one a core
(MALLOC_ARENA_MAX=2) held RSS level (1,036 -> 1,048 -> 1,038 -> 1,039 MB) but cost
20 % more CPU per avatar frame with four calls (13.9 against 11.5-11.7 ms), and
mapping every block from 256 KB on (MALLOC_MMAP_THRESHOLD_) two to three times as
much: the server keeps glibc's defaults, and an operator who prefers the memory may
set either variable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)


def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Blocking (it walks the heaps): run it in a worker thread, and seldom.

    A finished call's objects form reference cycles, freed only by a full collection,
    which Python runs rarely; collect first, so that there is memory to return.
    """
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
