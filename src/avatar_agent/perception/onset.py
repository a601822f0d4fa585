"""A fast, cheap onset detector for the customer's audio: "something started now".

Silero needs 100-130 ms of speech before it is sure; a plain level detector knows
within two 20 ms frames that the customer made a sound. That is not proof of speech
(a cough, a door, a keyboard), so its only use is to *hold* the avatar at once; the
VAD then decides whether it was a barge-in or the avatar resumes (see CallSpeech).

Each frame's RMS level (dBFS) is compared with an adaptive noise floor: the floor
follows quieter frames down at once and creeps up slowly (`floor_rise_db_s`), so
steady background noise is learned within seconds while a word is far too short
to be taken for noise. An onset is `frames` frames in a row at least `rise_db` over
the floor and at least `min_dbfs`; the detector then stays quiet until the level
has been back below that threshold for `rearm_frames` frames, so one sound gives
one onset.

Pure: frames in, a bool out; no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SILENCE_DBFS = -100.0  # level given to digital silence, so the floor stays finite


def level_dbfs(samples: npt.ArrayLike) -> float:
    """RMS level of mono samples in dB full scale (int16 scaled by 32768)."""
    arr = np.asarray(samples)
    x = arr.astype(np.float64).reshape(-1)
    if np.issubdtype(arr.dtype, np.integer):
        x = x / 32768.0
    if x.size == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(x * x)))
    return max(SILENCE_DBFS, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


@dataclass
class OnsetDetector:
    rise_db: float = 15.0
    min_dbfs: float = -65.0
    frames: int = 2
    rearm_frames: int = 5
    floor_rise_db_s: float = 6.0
    rate: int = 48000

    def __post_init__(self) -> None:
        if self.frames < 1 or self.rearm_frames < 1:
            raise ValueError("frames and rearm_frames must be at least 1")
        self.floor_db: float | None = None
        self.level_db = SILENCE_DBFS
        self._loud = 0  # loud frames in a row
        self._quiet = self.rearm_frames  # quiet frames in a row (armed when >= rearm)

    @property
    def threshold_db(self) -> float:
        floor = SILENCE_DBFS if self.floor_db is None else self.floor_db
        return max(floor + self.rise_db, self.min_dbfs)

    @property
    def armed(self) -> bool:
        return self._quiet >= self.rearm_frames

    def push(self, frame: npt.ArrayLike) -> bool:
        """One frame of mono audio; True when an onset is detected on this frame."""
        samples = np.asarray(frame)
        level = level_dbfs(samples)
        self.level_db = level
        threshold = self.threshold_db  # judged against the floor before this frame
        loud = level >= threshold
        self._update_floor(level, samples.size / self.rate)
        if not loud:
            self._loud = 0
            self._quiet += 1
            return False
        self._loud += 1
        if self.armed and self._loud >= self.frames:
            self._quiet = 0
            return True
        if not self.armed:
            self._quiet = 0  # still the same sound: stay disarmed until it is over
        return False

    def _update_floor(self, level: float, seconds: float) -> None:
        if self.floor_db is None or level <= self.floor_db:
            self.floor_db = level
        else:
            self.floor_db = min(level, self.floor_db + self.floor_rise_db_s * seconds)
