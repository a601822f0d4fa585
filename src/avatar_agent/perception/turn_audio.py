"""The customer's last seconds of voice, in memory, so a finished turn can be transcribed.

A bounded ring of 16 kHz samples on the call's media clock: voice activity pushes
what it has just read, and speech recognition cuts a turn out of it by its start and
end times. It holds at most `seconds` of audio (a turn longer than that keeps its
end), never touches disk, and goes with the call.

Pure apart from a lock: the voice-activity step writes from one pool thread while a
recognition job reads from another.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

RATE = 16_000
F32 = npt.NDArray[np.float32]


class TurnAudio:
    def __init__(self, seconds: float = 30.0) -> None:
        self._buf = np.zeros(round(seconds * RATE), np.float32)
        self._end = 0  # samples pushed since `origin`
        self.origin: float | None = None  # media time of the first sample pushed
        self._lock = threading.Lock()

    def push(self, samples: npt.ArrayLike, t0: float) -> None:
        """Append 16 kHz mono samples; `t0` is the media time of the first sample ever
        pushed (only the first call's value is kept: the stream is continuous)."""
        x = np.asarray(samples, np.float32).reshape(-1)
        with self._lock:
            if self.origin is None:
                self.origin = t0
            n, size = x.size, self._buf.size
            start = self._end % size
            if n >= size:
                self._buf[:] = np.roll(x[-size:], start)
            else:
                first = min(n, size - start)
                self._buf[start:start + first] = x[:first]
                self._buf[: n - first] = x[first:]
            self._end += n

    def clip(self, t_start: float, t_end: float) -> F32:
        """The samples between two media times, as far as the ring still holds them."""
        with self._lock:
            if self.origin is None:
                return np.zeros(0, np.float32)
            size = self._buf.size
            lo = max(round((t_start - self.origin) * RATE), self._end - size, 0)
            hi = min(round((t_end - self.origin) * RATE), self._end)
            if hi <= lo:
                return np.zeros(0, np.float32)
            idx = np.arange(lo, hi) % size
            return np.asarray(self._buf[idx], np.float32)
