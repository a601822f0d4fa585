"""The caller's own reference, learned only from what the model reads as calm.

A call's first seconds are not neutral: support callers are often angry from the
first word. A reference taken from the first seconds would turn that anger into the
caller's "normal" and hide it for the rest of the call. So the model's first answers
come from what is speaker-independent (see :mod:`avatar_agent.affect.model`), and this
reference only refines them:

* it learns only from rows of windows the model has just read as calm (low anger
  index and low arousal); rows of a window read otherwise are never offered again;
* its weight in the model grows with the evidence behind it (seconds of voiced speech
  or visible face), from 0 with nothing to 1 at ``FULL_S``;
* it stops learning after ``MAX_S`` seconds, so a customer who grows upset slowly
  does not drag it along.

Pure: rows and judgements in, no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from avatar_agent.perception.features import (
    FACE_DIM,
    FACE_HZ,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_HZ,
    VOICED_COL,
    Moments,
    SpeakerBaseline,
    face_floor,
    voice_floor,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM

F32 = npt.NDArray[np.float32]

CALM_ANGER = 25.0  # a window at or above this anger index never teaches the reference
CALM_AROUSAL = 0.5  # nor one read as aroused
FULL_S = 10.0  # seconds of calm voiced speech (or visible face) for full weight
MAX_S = 60.0  # the reference stops learning after this much
MIN_S = 1.0  # less than this is no reference at all


def weight_of(seconds: float) -> float:
    """How much the model may lean on a reference with ``seconds`` of evidence."""
    if seconds < MIN_S:
        return 0.0
    return float(min(1.0, seconds / FULL_S))


def is_calm(anger_index: float, arousal: float) -> bool:
    return anger_index < CALM_ANGER and arousal < CALM_AROUSAL


@dataclass(frozen=True)
class Reference:
    """What the model reads a window against; a field is None where nothing is known."""

    voice: SpeakerBaseline | None = None
    face: SpeakerBaseline | None = None
    speech: F32 | None = None  # mean speech embedding
    voice_weight: float = 0.0
    face_weight: float = 0.0
    speech_weight: float = 0.0


NO_REFERENCE = Reference()


class CallerReference:
    """One call's reference: moments of the rows and embeddings judged calm."""

    def __init__(self, max_s: float = MAX_S) -> None:
        self.max_s = max_s
        self.voice = Moments(VOICE_DIM, VOICED_COL)
        self.face = Moments(FACE_DIM, PRESENT_COL)
        self._speech_sum = np.zeros(EMBED_DIM, np.float64)
        self.speech_count = 0
        self.accepted = 0
        self.refused = 0

    @property
    def voice_s(self) -> float:
        return self.voice.rows / VOICE_HZ

    @property
    def face_s(self) -> float:
        return self.face.rows / FACE_HZ

    def offer(
        self,
        anger_index: float,
        arousal: float,
        voice: F32 | None = None,
        face: F32 | None = None,
        speech: F32 | None = None,
    ) -> bool:
        """Learn from rows first seen in a window the model read as (anger_index,
        arousal); only a calm reading teaches. Returns whether it was learned from."""
        if not is_calm(anger_index, arousal):
            self.refused += 1
            return False
        self.accepted += 1
        if voice is not None and self.voice_s < self.max_s:
            self.voice.add(voice)
        if face is not None and self.face_s < self.max_s:
            self.face.add(face)
        if speech is not None and np.isfinite(speech).all() and self.speech_count < self.max_s:
            self._speech_sum += speech
            self.speech_count += 1
        return True

    def reference(self) -> Reference:
        # one embedding a second of speech: its count is seconds of evidence
        return build_reference(self.voice, self.face, self._speech_sum, self.speech_count,
                               float(self.speech_count))


def build_reference(
    voice: Moments, face: Moments, speech_sum: npt.ArrayLike, speech_count: int,
    speech_s: float,
) -> Reference:
    """The reference that moments of calm rows and a sum of ``speech_count`` embeddings
    (``speech_s`` seconds of speech) give, each weighted by its evidence."""
    vw, fw = weight_of(voice.rows / VOICE_HZ), weight_of(face.rows / FACE_HZ)
    sw = weight_of(speech_s) if speech_count else 0.0
    mean = np.asarray(speech_sum, np.float64) / max(speech_count, 1)
    return Reference(
        voice=voice.baseline(voice_floor(), VOICE_HZ) if vw else None,
        face=face.baseline(face_floor(), FACE_HZ) if fw else None,
        speech=mean.astype(np.float32) if sw else None,
        voice_weight=vw,
        face_weight=fw,
        speech_weight=sw,
    )
