from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.affect.call_core import (
    LAG_S,
    MIN_VOICED_S,
    SPEECH_MAX_AGE_S,
    CallAffectCore,
)
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectOutput
from avatar_agent.affect.reference import FULL_S, NO_REFERENCE, weight_of
from avatar_agent.core.config import AffectConfig
from avatar_agent.perception.features import (
    ENERGY_COL,
    F0_COL,
    FACE_DIM,
    FACE_FRAMES,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICE_HZ,
    VOICED_COL,
    silence_row,
)
from avatar_agent.perception.ring import FeatureRing
from avatar_agent.perception.speech_embedding import EMBED_DIM

ANGRY_I = EMOTIONS.index("angry")


def _out(p_angry: float, arousal: float) -> AffectOutput:
    probs = [(1.0 - p_angry) / (len(EMOTIONS) - 1)] * len(EMOTIONS)
    probs[ANGRY_I] = p_angry
    return AffectOutput(arousal, 0.0, tuple(probs))


CALM = _out(0.05, 0.2)  # anger index 5, low arousal
ANGRY = _out(0.8, 0.9)
AROUSED = _out(0.05, 0.8)  # not angry, but aroused: not a calm reading either
HOT_NOT_AROUSED = _out(0.6, 0.2)  # angry at low arousal


def _rings() -> tuple[FeatureRing, FeatureRing]:
    return FeatureRing(VOICE_DIM, 4000), FeatureRing(FACE_DIM, 400)


def _speak(
    ring: FeatureRing, t0: float, seconds: float, value: float = -40.0, voiced: bool = True
) -> list[np.ndarray]:
    """Voice rows every 10 ms from t0; each row's mel00 is its index, the rest `value`."""
    first = round(t0 * VOICE_HZ)
    rows = []
    for i in range(round(seconds * VOICE_HZ)):
        row = np.full(VOICE_DIM, value, np.float32)
        row[0] = float(first + i)
        row[VOICED_COL] = float(voiced)
        if not voiced:
            row[F0_COL] = np.nan
        ring.append((first + i) / VOICE_HZ, row)
        rows.append(row)
    return rows


def _show(
    ring: FeatureRing, t0: float, seconds: float, value: float = 0.5, present: bool = True
) -> None:
    """Face rows at 10 Hz, 50 ms off the face grid (so no row sits on a grid edge)."""
    first = round(t0 * 10)
    for i in range(round(seconds * 10)):
        row = np.zeros(FACE_DIM, np.float32)
        if present:
            row[:PRESENT_COL] = value
            row[PRESENT_COL] = 1.0
        ring.append((first + i) / 10 + 0.05, row)


def _emb(value: float) -> np.ndarray:
    return np.full(EMBED_DIM, value, np.float32)


def _core() -> CallAffectCore:
    return CallAffectCore(AffectConfig())


def test_outputs_used_here_read_as_documented() -> None:
    assert CALM.anger_index == pytest.approx(5.0) and CALM.arousal < 0.5
    assert ANGRY.anger_index == pytest.approx(80.0)
    assert AROUSED.anger_index < 25 and AROUSED.arousal >= 0.5


def test_nothing_measured_gives_no_window() -> None:
    core = _core()
    voice, face = _rings()
    assert core.window(5.0, voice, face, None) is None
    # a fresh embedding alone is nothing to read either
    assert core.window(5.0, voice, face, (4.8, _emb(1.0))) is None
    core.skip()  # nothing pending: harmless
    assert core.reference.voice.rows == 0


def test_voice_only_window_is_the_last_two_seconds_ending_at_the_newest_row() -> None:
    core = _core()
    voice, face = _rings()
    rows = _speak(voice, 0.0, 4.0)
    w = core.window(4.0 + LAG_S - 0.2, voice, face, None)  # prosody lags the clock
    assert w is not None and w.has_voice and not w.has_face and not w.has_speech
    assert w.voice is not None and w.voice.shape == (VOICE_FRAMES, VOICE_DIM)
    np.testing.assert_array_equal(w.voice, np.stack(rows[-VOICE_FRAMES:]))
    assert w.ref == NO_REFERENCE


def test_a_short_first_utterance_is_padded_with_silence_at_the_start() -> None:
    core = _core()
    voice, face = _rings()
    rows = _speak(voice, 0.0, 0.8)
    w = core.window(1.0, voice, face, None)
    assert w is not None and w.voice is not None
    np.testing.assert_array_equal(w.voice[-80:], np.stack(rows))
    np.testing.assert_array_equal(w.voice[:120], np.repeat(silence_row()[None], 120, axis=0))


@pytest.mark.parametrize("voiced_frames, has_voice", [(29, False), (30, True), (31, True)])
def test_voice_needs_a_minimum_of_voiced_speech(voiced_frames: int, has_voice: bool) -> None:
    assert round(MIN_VOICED_S * VOICE_HZ) == 30
    core = _core()
    voice, face = _rings()
    t_voiced = 4.0 - voiced_frames / VOICE_HZ
    _speak(voice, 0.0, t_voiced, voiced=False)
    _speak(voice, t_voiced, voiced_frames / VOICE_HZ)
    w = core.window(4.3, voice, face, None)
    assert (w is not None) == has_voice
    if w is not None:
        assert w.voice is not None and int(w.voice[:, VOICED_COL].sum()) == voiced_frames
    # with a face the same moment is read from the face alone
    core2 = _core()
    _show(face, 0.0, 4.3)
    w2 = core2.window(4.3, voice, face, None)
    assert w2 is not None and w2.has_face and w2.has_voice == has_voice


@pytest.mark.parametrize("present, has_face", [(9, False), (10, True), (20, True)])
def test_face_needs_half_the_frames_present(present: int, has_face: bool) -> None:
    core = _core()
    voice, face = _rings()
    now = 3.0
    absent_s = 3.0 - present / 10
    _show(face, 0.0, absent_s, present=False)
    _show(face, absent_s, present / 10, value=0.7)
    w = core.window(now, voice, face, None)
    assert (w is not None) == has_face
    if w is not None:
        assert w.face is not None and w.face.shape == (FACE_FRAMES, FACE_DIM)
        assert w.face[:, PRESENT_COL].sum() == present
        assert np.all(w.face[-present:, :PRESENT_COL] == pytest.approx(0.7))
        assert not w.has_voice and not w.has_speech


def test_voice_only_when_the_face_is_gone_and_face_only_when_silent() -> None:
    core = _core()
    voice, face = _rings()
    _speak(voice, 0.0, 4.0)
    _show(face, 0.0, 1.0)  # the face left 3 s ago
    w = core.window(4.3, voice, face, (4.0, _emb(1.0)))
    assert w is not None and w.has_voice and not w.has_face and w.has_speech
    core.skip()

    core = _core()
    voice, face = _rings()
    _speak(voice, 0.0, 2.0)
    _speak(voice, 2.0, 3.0, voiced=False)
    _show(face, 0.0, 5.0)
    w = core.window(5.0, voice, face, (4.9, _emb(1.0)))
    assert w is not None and not w.has_voice and w.has_face
    assert not w.has_speech  # an embedding is only read with a voice


def test_a_face_gone_for_seconds_is_not_used() -> None:
    voice, face = _rings()
    _show(face, 0.0, 3.0)
    core = _core()
    assert core.window(3.0, voice, face, None) is not None
    core.skip()
    assert core.window(8.0, voice, face, None) is None


def test_only_a_fresh_speech_embedding_joins_the_window() -> None:
    voice, face = _rings()
    _speak(voice, 0.0, 4.0)
    now = 4.3
    fresh = _core().window(now, voice, face, (now - 0.3, _emb(3.0)))
    assert fresh is not None and fresh.speech is not None and np.all(fresh.speech == 3.0)
    edge = _core().window(now, voice, face, (now - SPEECH_MAX_AGE_S + 1e-6, _emb(2.0)))
    assert edge is not None and edge.has_speech
    stale = _core().window(now, voice, face, (now - SPEECH_MAX_AGE_S - 0.1, _emb(2.0)))
    assert stale is not None and stale.has_voice and not stale.has_speech


def test_rows_of_a_calm_reading_teach_the_reference() -> None:
    core = _core()
    voice, face = _rings()
    _speak(voice, 0.0, 4.0, value=-30.0)
    _show(face, 0.0, 4.3, value=0.4)
    w = core.window(4.3, voice, face, (4.0, _emb(2.0)))
    assert w is not None and w.voice is not None and w.face is not None
    assert w.ref == NO_REFERENCE  # the reference so far: nothing yet
    assert core.reference.voice.rows == 0  # nothing is learned before the reading
    core.observe(4.3, CALM)
    ref = core.reference
    assert ref.accepted == 1 and ref.refused == 0
    assert ref.voice.rows == VOICE_FRAMES  # the window's voiced rows
    # face rows newer than now - 2 s - LAG_S: 1.85 .. 4.25
    assert ref.face.rows == 25 and ref.speech_count == 1
    r = ref.reference()
    assert r.voice is not None and r.voice.mean[ENERGY_COL] == pytest.approx(-30.0)
    assert r.voice_weight == pytest.approx(weight_of(2.0))
    assert r.face is not None and r.face.mean[0] == pytest.approx(0.4)
    # the next window carries it, and its new rows alone are offered
    _speak(voice, 4.0, 0.25, value=-30.0)
    w2 = core.window(4.55, voice, face, (4.0, _emb(2.0)))
    assert w2 is not None and w2.ref.voice is not None and r.voice is not None
    np.testing.assert_array_equal(w2.ref.voice.mean, r.voice.mean)
    np.testing.assert_array_equal(w2.ref.voice.std, r.voice.std)
    assert w2.ref.voice_weight == r.voice_weight and w2.ref.face_weight == r.face_weight
    assert w2.ref.speech is not None and np.all(w2.ref.speech == 2.0)
    core.observe(4.55, CALM)
    assert ref.voice.rows == VOICE_FRAMES + 25
    assert ref.face.rows == 25  # no face row came in
    assert ref.speech_count == 1  # the same embedding is learned once


@pytest.mark.parametrize("reading", [ANGRY, AROUSED, HOT_NOT_AROUSED],
                         ids=["angry", "aroused", "angry-not-aroused"])
def test_rows_read_as_not_calm_are_never_learned_not_even_later(reading: AffectOutput) -> None:
    core = _core()
    voice, face = _rings()
    emb = (3.0, _emb(50.0))
    _speak(voice, 0.0, 3.0, value=10.0)  # a loud, upset start
    _show(face, 0.0, 3.3, value=0.9)
    w = core.window(3.3, voice, face, emb)
    assert w is not None and w.has_voice and w.has_face and w.has_speech
    core.observe(3.3, reading)
    assert core.reference.refused == 1
    assert core.reference.voice.rows == 0 and core.reference.face.rows == 0
    assert core.reference.speech_count == 0
    # 0.25 s later most of the window is the same upset speech, and the embedding is
    # still fresh; this window is read calm, but only its new rows may teach
    _speak(voice, 3.0, 0.25, value=-30.0)
    _show(face, 3.3, 0.3, value=0.1)
    w = core.window(3.55, voice, face, emb)
    assert w is not None and w.voice is not None
    assert (w.voice[:, ENERGY_COL] == 10.0).sum() == 175  # the upset rows are in it
    core.observe(3.55, CALM)
    ref = core.reference
    assert ref.voice.rows == 25 and ref.face.rows == 3 and ref.speech_count == 0
    # keep talking calmly: the upset start never enters the reference
    t = 3.25
    for k in range(40):
        _speak(voice, t, 0.25, value=-30.0)
        _show(face, 3.6 + 0.3 * k, 0.3, value=0.1)
        t += 0.25
        now = t + 0.3
        core.window(now, voice, face, emb)
        core.observe(now, CALM)
    r = ref.reference()
    assert r.voice is not None and r.face is not None
    assert ref.voice.rows == 25 * 41 and r.voice_weight == 1.0
    assert r.voice.mean[ENERGY_COL] == pytest.approx(-30.0)
    assert r.voice.std[ENERGY_COL] == pytest.approx(3.0)  # the floor: no 10 dB row in it
    assert r.face.mean[0] == pytest.approx(0.1) and r.speech is None


def test_skip_drops_the_pending_rows() -> None:
    core = _core()
    voice, face = _rings()
    _speak(voice, 0.0, 3.0, value=10.0)
    _show(face, 0.0, 3.3)
    assert core.window(3.3, voice, face, (3.0, _emb(9.0))) is not None
    core.skip()  # the engine was busy: nobody judged these rows
    _speak(voice, 3.0, 0.25, value=-30.0)
    w = core.window(3.55, voice, face, (3.0, _emb(9.0)))
    assert w is not None and w.ref == NO_REFERENCE
    core.observe(3.55, CALM)
    ref = core.reference
    assert ref.voice.rows == 25 and ref.face.rows == 0 and ref.speech_count == 0
    base = ref.voice.baseline(np.zeros(VOICE_DIM, np.float32), VOICE_HZ)
    assert base is not None and base.mean[ENERGY_COL] == pytest.approx(-30.0)


def _call(reading: AffectOutput, seconds: float = 14.0) -> list[tuple[float, float, float]]:
    """Play a call of steady speech and face at the configured rate; every window is
    read as `reading`. Per tick: (calm voice seconds learned before it, the weights the
    window carried for voice and face)."""
    cfg = AffectConfig()
    core = CallAffectCore(cfg)
    voice, face = _rings()
    period = 1.0 / cfg.rate_hz
    voice_i = face_i = 0
    out = []
    for k in range(1, round(seconds * cfg.rate_hz) + 1):
        now = k * period
        n_voice = round((now - 0.3) * VOICE_HZ)  # prosody arrives a little late
        if n_voice > voice_i:
            _speak(voice, voice_i / VOICE_HZ, (n_voice - voice_i) / VOICE_HZ, value=-25.0)
            voice_i = n_voice
        n_face = int(now * 10 - 0.5) + 1  # rows at 0.05, 0.15, ... up to now
        if n_face > face_i:
            _show(face, face_i / 10, (n_face - face_i) / 10)
            face_i = n_face
        learned = core.reference.voice_s
        w = core.window(now, voice, face, None)
        if w is None:
            core.skip()
            continue
        out.append((learned, w.ref.voice_weight, w.ref.face_weight))
        core.observe(now, reading)
    assert voice_i == round((seconds - 0.3) * VOICE_HZ) and face_i == round(seconds * 10)
    return out


def test_the_reference_weight_grows_with_calm_evidence() -> None:
    ticks = _call(CALM)
    weights = [vw for _, vw, _ in ticks]
    assert all(vw == pytest.approx(weight_of(s)) for s, vw, _ in ticks)
    assert all(vw == 0.0 for s, vw, _ in ticks if s < 1.0)
    assert any(s < 1.0 for s, _, _ in ticks)  # the check above saw early ticks
    assert all(vw == 1.0 for s, vw, _ in ticks if s >= FULL_S)
    assert weights[-1] == 1.0 and any(0.0 < vw < 1.0 for vw in weights)
    assert all(b >= a for a, b in zip(weights, weights[1:], strict=False))
    assert ticks[-1][2] == 1.0  # the face's weight too


@pytest.mark.parametrize("reading", [ANGRY, AROUSED], ids=["angry", "aroused"])
def test_a_caller_read_upset_throughout_never_gets_a_reference(reading: AffectOutput) -> None:
    ticks = _call(reading)
    assert len(ticks) > 40
    assert all(s == 0.0 and vw == 0.0 and fw == 0.0 for s, vw, fw in ticks)


def test_observe_returns_the_smoothed_snapshot() -> None:
    core = _core()
    voice, face = _rings()
    _speak(voice, 0.0, 3.0)
    assert core.window(3.3, voice, face, None) is not None
    snap = core.observe(3.3, ANGRY)
    assert snap.t == 3.3 and snap.anger_index == pytest.approx(80.0)
    assert snap.emotion == "angry" and snap.arousal == pytest.approx(0.9)
