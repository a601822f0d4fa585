"""Voice activity detection with Silero VAD, streaming and offline, on 16 kHz mono float32.

The Silero model scores 512-sample (32 ms) chunks. :class:`VoiceActivity` buffers
input of any length into such chunks, keeps each chunk's speech probability, and
turns the probabilities into ``speech_start`` / ``speech_end`` events with
hysteresis:

* a start is confirmed once the probability has reached ``start_threshold`` and
  has not fallen below ``end_threshold`` for ``min_speech_s``; the event carries
  the time of the first chunk at or above ``start_threshold``;
* an end is confirmed once the probability has stayed below ``start_threshold``
  since it first fell below ``end_threshold``, for ``min_silence_s``; the event
  carries the time of that first chunk below ``end_threshold``.

Events are therefore reported ``min_speech_s`` / ``min_silence_s`` (plus up to
one chunk) after the time they carry. Times are seconds of audio pushed so far.

The ONNX export of the model runs under onnxruntime: one session per process,
loaded on first use and shared (``InferenceSession.run`` is thread-safe), while
the recurrent state and the 64-sample context that the model carries between
chunks live in each :class:`VoiceActivity`, so calls never share state. The
session uses one thread: the model is tiny and more threads only add overhead.
The ``silero_vad`` package is not imported (only its bundled weights are read),
because importing it calls ``torch.set_num_threads(1)`` for the whole process.
"""

from __future__ import annotations

import functools
import importlib.util
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime

RATE = 16_000
CHUNK = 512
CONTEXT = 64
CHUNK_S = CHUNK / RATE

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class VadEvent:
    kind: Literal["speech_start", "speech_end"]
    t: float


def model_path() -> Path:
    """Path of the Silero VAD ONNX weights that ship in the ``silero-vad`` wheel."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("silero-vad is not installed (pip install silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise RuntimeError(f"Silero VAD weights not found at {path}")
    return path


@functools.cache
def _session() -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )


class VoiceActivity:
    """Streaming speech / non-speech tracker for one audio stream (see module docstring).

    ``history_s`` bounds how many chunk probabilities :attr:`probabilities` keeps
    (None keeps all, for offline use), so a long call does not grow memory.
    """

    def __init__(
        self,
        *,
        start_threshold: float = 0.5,
        end_threshold: float = 0.35,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.3,
        history_s: float | None = 60.0,
    ) -> None:
        if not 0.0 <= end_threshold <= start_threshold <= 1.0:
            raise ValueError("need 0 <= end_threshold <= start_threshold <= 1")
        self.start_threshold = start_threshold
        self.end_threshold = end_threshold
        self.min_speech_s = min_speech_s
        self.min_silence_s = min_silence_s
        self._session = _session()
        maxlen = None if history_s is None else max(1, round(history_s / CHUNK_S))
        self._history: deque[float] = deque(maxlen=maxlen)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: clear model state, buffer, hysteresis and history."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._chunks = 0
        self._speaking = False
        self._onset: float | None = None  # start of a not yet confirmed speech run
        self._offset: float | None = None  # start of a not yet confirmed silence run
        self._history.clear()
        self._last = 0.0

    @property
    def is_speech(self) -> bool:
        """True between a confirmed ``speech_start`` and the following ``speech_end``."""
        return self._speaking

    @property
    def probability(self) -> float:
        """Speech probability of the most recent chunk (0.0 before the first)."""
        return self._last

    @property
    def probabilities(self) -> FloatArray:
        """Speech probability per 32 ms chunk, oldest first (bounded by ``history_s``)."""
        return np.fromiter(self._history, dtype=np.float32, count=len(self._history))

    @property
    def time_s(self) -> float:
        """Seconds of audio scored so far (whole chunks only)."""
        return self._chunks * CHUNK_S

    def push(self, samples: npt.ArrayLike) -> list[VadEvent]:
        """Score every complete 512-sample chunk now available; return the events confirmed."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        buf = np.concatenate((self._pending, x)) if self._pending.size else x
        n_full = buf.size // CHUNK
        events: list[VadEvent] = []
        for k in range(n_full):
            events.extend(self._step(buf[k * CHUNK : (k + 1) * CHUNK]))
        self._pending = buf[n_full * CHUNK :].copy()
        return events

    def flush(self) -> list[VadEvent]:
        """End the stream: score the zero-padded remainder and close an open speech segment."""
        events: list[VadEvent] = []
        if self._pending.size:
            tail = np.zeros(CHUNK, dtype=np.float32)
            tail[: self._pending.size] = self._pending
            self._pending = np.zeros(0, dtype=np.float32)
            events.extend(self._step(tail))
        if self._speaking:
            end = self._offset if self._offset is not None else self.time_s
            events.append(VadEvent("speech_end", end))
            self._speaking = False
        self._onset = self._offset = None
        return events

    def _score(self, chunk: FloatArray) -> float:
        model_in = np.concatenate((self._context, chunk))[np.newaxis, :]
        out, self._state = self._session.run(
            None, {"input": model_in, "state": self._state, "sr": np.array(RATE, dtype=np.int64)}
        )
        self._context = chunk[-CONTEXT:].copy()
        return float(out[0, 0])

    def _step(self, chunk: FloatArray) -> list[VadEvent]:
        p = self._score(chunk)
        t = self._chunks * CHUNK_S
        self._chunks += 1
        self._history.append(p)
        self._last = p
        done = self._chunks * CHUNK_S  # end of this chunk
        if not self._speaking:
            if self._onset is None:
                if p >= self.start_threshold:
                    self._onset = t
            elif p < self.end_threshold:
                self._onset = None
            if self._onset is not None and done - self._onset >= self.min_speech_s - 1e-9:
                self._speaking = True
                start, self._onset = self._onset, None
                return [VadEvent("speech_start", round(start, 6))]
            return []
        if p >= self.start_threshold:
            self._offset = None
        elif p < self.end_threshold and self._offset is None:
            self._offset = t
        if self._offset is not None and done - self._offset >= self.min_silence_s - 1e-9:
            self._speaking = False
            end, self._offset = self._offset, None
            return [VadEvent("speech_end", round(end, 6))]
        return []


def detect_speech(samples16k: npt.ArrayLike, **options: float) -> list[tuple[float, float]]:
    """Speech segments ``(start_s, end_s)`` of a whole recording; options as VoiceActivity."""
    vad = VoiceActivity(history_s=None, **options)
    events = vad.push(samples16k) + vad.flush()
    starts = [e.t for e in events if e.kind == "speech_start"]
    ends = [e.t for e in events if e.kind == "speech_end"]
    return list(zip(starts, ends, strict=True))
