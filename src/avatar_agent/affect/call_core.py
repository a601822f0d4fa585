"""One call's affect after perception, as a pure core a live call and `evaluate` share.

Each tick (``affect.rate_hz``) the core cuts the last 2 s out of the call's feature
rings (:meth:`CallAffectCore.window`); the model reads it, batched with other calls;
the output comes back to :meth:`CallAffectCore.observe`, which

1. offers the rows first seen in this window to the caller's reference, which learns
   from them only if the output reads calm (an angry start never becomes "neutral"),
2. smooths the output into the level the avatar and the operators act on.

No clock, no I/O, no asyncio: the live shell (:mod:`avatar_agent.affect.live`) and the
call-protocol evaluation drive it with media times, frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectOutput, AffectWindow
from avatar_agent.affect.reference import CallerReference
from avatar_agent.affect.state import AffectSnapshot, AffectState
from avatar_agent.core.config import AffectConfig
from avatar_agent.perception.features import (
    FACE_FRAMES,
    PRESENT_COL,
    VOICE_FRAMES,
    VOICE_HZ,
    VOICED_COL,
    WINDOW_S,
    fit_length,
    resample_face,
    silence_row,
)
from avatar_agent.perception.ring import FeatureRing

F32 = npt.NDArray[np.float32]

MIN_VOICED_S = 0.3  # a window with less voiced speech than this is read from the face only
SPEECH_MAX_AGE_S = 1.6  # an embedding is refreshed every second; an older one is stale
LAG_S = 0.5  # prosody runs a few hundred ms behind the audio


@dataclass(frozen=True)
class _Fresh:
    """Rows first seen in the pending window, offered to the reference once judged."""

    voice: F32 | None
    face: F32 | None
    speech: F32 | None
    voice_t: float
    face_t: float
    speech_t: float


class CallAffectCore:
    def __init__(self, cfg: AffectConfig) -> None:
        self.cfg = cfg
        self.state = AffectState(cfg)
        self.reference = CallerReference()
        self._voice_t = -np.inf  # newest row time already offered to the reference
        self._face_t = -np.inf
        self._speech_t = -np.inf
        self._fresh: _Fresh | None = None

    def window(
        self,
        now: float,
        voice: FeatureRing,
        face: FeatureRing,
        speech: tuple[float, F32] | None,
    ) -> AffectWindow | None:
        """The last 2 s as the model reads it, or None when there is nothing to read.

        ``speech`` is the newest speech embedding: (media time of its window's end, it).
        """
        v_rows = f_grid = None
        v_new = f_new = None
        v_last, f_last = self._voice_t, self._face_t
        times, rows = voice.window(now - WINDOW_S - LAG_S)
        if len(times):
            # the window ends at the newest row
            keep = times > times[-1] - WINDOW_S + 1e-6
            times, rows = times[keep], rows[keep]
            if (rows[:, VOICED_COL] > 0.5).sum() >= MIN_VOICED_S * VOICE_HZ:
                v_rows = fit_length(rows, VOICE_FRAMES, silence_row())
            new = times > self._voice_t
            v_new, v_last = rows[new], float(times[-1])
        times, rows = face.window(now - WINDOW_S - LAG_S)
        if len(times):
            grid = resample_face(times, rows, now, FACE_FRAMES)
            if grid[:, PRESENT_COL].sum() >= FACE_FRAMES // 2:
                f_grid = grid
            new = times > self._face_t
            f_new, f_last = rows[new], float(times[-1])
        emb = None
        s_new, s_last = None, self._speech_t
        if v_rows is not None and speech is not None and now - speech[0] <= SPEECH_MAX_AGE_S:
            emb = speech[1]
            if speech[0] > self._speech_t:
                s_new, s_last = emb, speech[0]
        self._fresh = _Fresh(v_new, f_new, s_new, v_last, f_last, s_last)
        if v_rows is None and f_grid is None:
            self._commit(None)
            return None
        return AffectWindow(v_rows, f_grid, emb, self.reference.reference())

    def observe(self, now: float, out: AffectOutput) -> AffectSnapshot:
        """The model's reading of the window :meth:`window` gave last."""
        self._commit(out)
        return self.state.update(now, out.arousal, out.valence, out.probs, EMOTIONS)

    def skip(self) -> None:
        """The pending window was not read (the engine was busy or failed): its rows
        go untaught, as they would after an angry reading."""
        self._commit(None)

    def _commit(self, out: AffectOutput | None) -> None:
        fresh, self._fresh = self._fresh, None
        if fresh is None:
            return
        if out is not None:
            self.reference.offer(out.anger_index, out.arousal,
                                 fresh.voice, fresh.face, fresh.speech)
        self._voice_t, self._face_t = fresh.voice_t, fresh.face_t
        self._speech_t = fresh.speech_t
