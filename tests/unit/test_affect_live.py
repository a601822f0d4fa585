from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from avatar_agent.affect.features import (
    FACE_DIM,
    FACE_FRAMES,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICED_COL,
)
from avatar_agent.affect.live import build_window
from avatar_agent.config import PerceptionConfig
from avatar_agent.metrics import Metrics
from avatar_agent.perception.live import CallPerception
from avatar_agent.perception.speech_embedding import EMBED_DIM


def _perception() -> CallPerception:
    return CallPerception(PerceptionConfig(), ThreadPoolExecutor(1), Metrics(), lambda: 0.0)


def _speak(p: CallPerception, t0: float, seconds: float, voiced: bool) -> None:
    n = round(seconds * 100)
    rows = np.random.default_rng(0).normal(-40, 5, (n, VOICE_DIM)).astype(np.float32)
    rows[:, VOICED_COL] = float(voiced)
    for i in range(n):
        p.model_voice.append(t0 + i / 100, rows[i])
    p.model_voice_base.update(rows)


def _show_face(p: CallPerception, t0: float, seconds: float, fps: float = 15) -> None:
    n = round(seconds * fps)
    rows = np.random.default_rng(1).normal(0, 0.1, (n, FACE_DIM)).astype(np.float32)
    rows[:, PRESENT_COL] = 1
    for i in range(n):
        p.model_face.append(t0 + i / fps, rows[i])
    p.model_face_base.update(rows)


def test_nothing_measured_gives_no_window() -> None:
    assert build_window(_perception(), 5.0) is None


def test_voice_only_window_ends_at_the_newest_voice_row() -> None:
    p = _perception()
    _speak(p, 0.0, 4.0, voiced=True)
    w = build_window(p, 4.3)  # prosody lags the clock by a few hundred ms
    assert w is not None and w.has_voice and not w.has_face
    assert w.voice is not None and w.voice.shape == (VOICE_FRAMES, VOICE_DIM)
    assert (w.voice[:, VOICED_COL] > 0.5).all()  # a full window of speech, no padding


def test_silence_after_speech_is_read_from_the_face_only() -> None:
    p = _perception()
    _speak(p, 0.0, 3.0, voiced=True)
    _speak(p, 3.0, 3.0, voiced=False)
    _show_face(p, 0.0, 6.0)
    w = build_window(p, 6.0)
    assert w is not None and not w.has_voice and w.has_face
    assert w.face is not None and w.face.shape == (FACE_FRAMES, FACE_DIM)


def test_a_face_gone_for_seconds_is_not_used() -> None:
    p = _perception()
    _show_face(p, 0.0, 3.0)
    assert build_window(p, 3.0) is not None
    assert build_window(p, 8.0) is None


def test_a_fresh_speech_embedding_joins_the_voice_window_and_a_stale_one_does_not() -> None:
    p = _perception()
    _speak(p, 0.0, 4.0, voiced=True)
    first = np.full(EMBED_DIM, 1.0, np.float32)
    latest = np.full(EMBED_DIM, 3.0, np.float32)
    p.speech_base.update(first)
    p.speech_base.update(latest)
    p.speech = (4.0, latest)
    w = build_window(p, 4.3)
    assert w is not None and w.has_speech
    assert w.speech is not None and w.speech_base is not None
    assert np.allclose(w.speech, 3.0) and np.allclose(w.speech_base, 2.0)
    p.speech = (2.0, latest)  # more than a refresh period old
    w = build_window(p, 4.3)
    assert w is not None and w.has_voice and not w.has_speech
