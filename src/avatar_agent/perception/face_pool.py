"""Face analysers kept between calls: a call takes one and gives it back at its end.

Each consenting call used to build its own MediaPipe face mesh (a graph with its own
threads and TensorFlow Lite interpreters) and close it when it ended. Nothing of it
stayed alive, but building and freeing that much native memory once a call, on
whichever analysis thread ran it, left the C library's arenas holding more free space
after every round: over 100 short consenting calls RSS grew 22 %, while the same calls
without analysis stayed level; with meshes kept it stays within 4.4 % of where it
started (`scripts/soak.py churn`, see the README). A mesh given back is reset (a
new run of its graph, its tracking and eye history cleared: nothing of one customer's
face reaches the next call) and kept for the next call, up to ``keep`` idle.

`take` and `give_back` block (building or resetting a graph takes tens to hundreds
of milliseconds): call them in the analysis pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from avatar_agent.perception.face import FaceAnalyzer

log = logging.getLogger(__name__)


class FaceAnalyzers:
    def __init__(self, build: Callable[[], FaceAnalyzer], keep: int) -> None:
        self._build = build
        self._keep = keep
        self._idle: list[FaceAnalyzer] = []
        self._lock = threading.Lock()
        self._closed = False
        self.built = 0  # analysers ever built: flat once calls reuse them
        self.alive = 0  # built and not yet closed: in use or idle

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    def take(self) -> FaceAnalyzer:
        """An analyser for a new stream: a kept one, or a new one when none is idle."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.built += 1
            self.alive += 1
        return self._build()

    def warm(self) -> None:
        """Build one analyser and run it once (loading MediaPipe), kept for a call."""
        analyzer = self.take()
        try:
            analyzer.analyze(np.zeros((64, 64, 3), np.uint8), 0.0)
        finally:
            self.give_back(analyzer)

    def give_back(self, analyzer: FaceAnalyzer) -> None:
        """The stream has ended: reset the analyser and keep it, or close it when
        enough are idle (or the pool is closed, or the reset failed)."""
        try:
            analyzer.reset()
        except Exception:  # a graph that cannot restart is not reused
            log.exception("a face analyser could not be reset; it is closed")
            self._closed_one(analyzer)
            return
        with self._lock:
            if not self._closed and len(self._idle) < self._keep:
                self._idle.append(analyzer)
                return
        self._closed_one(analyzer)

    def _closed_one(self, analyzer: FaceAnalyzer) -> None:
        analyzer.close()
        with self._lock:
            self.alive -= 1

    def close(self) -> None:
        """Close every idle analyser; those in use are closed when given back."""
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for analyzer in idle:
            self._closed_one(analyzer)
