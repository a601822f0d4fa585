"""The fast onset detector, driven 20 ms frame by frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from avatar_agent.perception.onset import SILENCE_DBFS, OnsetDetector, level_dbfs
from avatar_agent.testing.measure import load_clip, speech_onset

RATE = 48000
FRAME = 960
CLIP = "speech_emotion/ravdess/Actor_01/03-01-01-01-01-01-01.flac"


def noise(dbfs: float, frames: int, seed: int = 0) -> list[npt.NDArray[np.float64]]:
    """White noise at an RMS level of `dbfs`, cut into 20 ms frames."""
    x = np.random.default_rng(seed).standard_normal(frames * FRAME)
    x *= 10 ** (dbfs / 20) / np.sqrt(np.mean(x * x))
    return list(x.reshape(frames, FRAME))


def run(det: OnsetDetector, frames: list[npt.NDArray[np.float64]]) -> list[int]:
    """Indices of the frames an onset fired on."""
    return [i for i, f in enumerate(frames) if det.push(f)]


def test_level_of_full_scale_silence_and_int16() -> None:
    assert level_dbfs(np.zeros(FRAME)) == SILENCE_DBFS
    assert level_dbfs(np.full(FRAME, 32767, np.int16)) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(np.full(FRAME, 0.1)) == pytest.approx(-20.0)


def test_a_sound_over_silence_fires_once_on_its_second_frame() -> None:
    det = OnsetDetector(rise_db=15, min_dbfs=-60, frames=2)
    frames = noise(-95, 50) + noise(-40, 30, seed=1) + noise(-95, 20, seed=2)
    assert run(det, frames) == [51]


def test_a_single_click_is_not_an_onset() -> None:
    det = OnsetDetector(frames=2)
    frames = noise(-95, 30) + noise(-20, 1, seed=1) + noise(-95, 30, seed=2)
    assert run(det, frames) == []


def test_sounds_below_the_absolute_floor_never_fire() -> None:
    det = OnsetDetector(rise_db=15, min_dbfs=-60)
    # 30 dB over digital near-silence, but still quieter than any voice in a call
    assert run(det, noise(-100, 30) + noise(-65, 30, seed=1)) == []


def test_the_rise_is_judged_against_the_background_noise() -> None:
    det = OnsetDetector(rise_db=15, min_dbfs=-60)
    steady = noise(-50, 100)  # a noisy room from the start: learnt, not an onset
    assert run(det, steady) == []
    assert det.floor_db is not None and -53 < det.floor_db <= -49
    assert run(det, noise(-42, 20, seed=1)) == []  # +8 dB: not enough
    assert run(det, noise(-50, 20, seed=2) + noise(-30, 10, seed=3)) == [21]  # +20 dB


def test_one_sound_one_onset_until_quiet_again() -> None:
    det = OnsetDetector(frames=2, rearm_frames=5)
    loud, quiet = noise(-30, 10, seed=1), noise(-95, 1, seed=2)
    # a word, a 20 ms dip, more of the word: the same sound
    assert run(det, noise(-95, 20) + loud + quiet + loud) == [21]
    assert run(det, noise(-95, 5, seed=3) + loud) == [6]  # quiet long enough: re-armed


def test_a_new_steady_noise_is_learnt_within_seconds() -> None:
    det = OnsetDetector(rise_db=15, min_dbfs=-60, floor_rise_db_s=6.0)
    frames = noise(-90, 20) + noise(-45, 500, seed=1)  # a fan switched on, then 10 s
    assert run(det, frames) == [21]  # its switching on is a sound
    assert det.floor_db is not None and det.floor_db > -48
    gap = noise(-90, 10, seed=2)  # the fan stops briefly; floor drops, so on again fires
    assert run(det, gap + noise(-45, 5, seed=3)) == [11]
    assert run(det, noise(-45, 400, seed=4) + noise(-44, 10, seed=5)) == []


def test_real_speech_fires_within_two_frames_of_its_onset(data_dir: Path) -> None:
    clip = load_clip(data_dir / CLIP)
    onset = speech_onset(clip)  # the measurement's own onset: within 26 dB of the peak
    det = OnsetDetector()
    n = len(clip) // FRAME
    fired = run(det, list(clip[: n * FRAME].reshape(n, FRAME)))
    assert fired, "no onset in a real speech clip"
    first = (fired[0] + 1) * FRAME / RATE  # the end of the frame it fired on
    assert onset < first <= onset + 0.06, (onset, first)
