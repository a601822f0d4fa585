"""Handing freed memory back to the system after a call.

A call builds and drops large native buffers (the face mesh graphs, codecs, the
avatar's frames). glibc keeps what is freed in its per-thread heaps instead of
returning it, so a server's RSS climbed by hundreds of MB over a hundred short calls
with nothing alive; `malloc_trim` returns the free pages (where the C library is
glibc; elsewhere only the collection runs).
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
