"""Types shared by the speech engines and the avatar's lip-sync."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class PhonemeSpan:
    """One phoneme of synthesized speech, in seconds from the start of its utterance."""

    phoneme: str
    start: float
    end: float


@dataclass(frozen=True)
class Utterance:
    """One synthesized sentence: mono int16 PCM and the phonemes that cover it."""

    text: str
    pcm: npt.NDArray[np.int16]
    sample_rate: int
    phonemes: tuple[PhonemeSpan, ...]
    # Which part of a layered reply this sentence is (soothe, confirm, solve, repair,
    # apology), or None for plain text; the avatar's cues follow it.
    layer: str | None = None

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate
