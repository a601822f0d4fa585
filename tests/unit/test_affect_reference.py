from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.affect.reference import (
    CALM_ANGER,
    CALM_AROUSAL,
    FULL_S,
    MAX_S,
    MIN_S,
    NO_REFERENCE,
    CallerReference,
    Reference,
    is_calm,
    weight_of,
)
from avatar_agent.perception.features import (
    F0_COL,
    FACE_DIM,
    PRESENT_COL,
    VOICE_DIM,
    VOICED_COL,
    face_floor,
    voice_floor,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM

CALM = (5.0, 0.2)  # anger index, arousal


def _voice(n: int, value: float, voiced: bool = True) -> np.ndarray:
    rows = np.full((n, VOICE_DIM), value, np.float32)
    rows[:, VOICED_COL] = float(voiced)
    if not voiced:
        rows[:, F0_COL] = np.nan
    return rows


def _face(n: int, value: float, present: bool = True) -> np.ndarray:
    rows = np.full((n, FACE_DIM), value, np.float32)
    rows[:, PRESENT_COL] = float(present)
    return rows


def _emb(value: float) -> np.ndarray:
    return np.full(EMBED_DIM, value, np.float32)


def test_weight_grows_with_evidence_from_one_second_to_full() -> None:
    assert MIN_S == 1.0 and FULL_S == 10.0
    assert weight_of(0.0) == 0.0
    assert weight_of(0.99) == 0.0
    assert weight_of(1.0) == pytest.approx(0.1)
    assert weight_of(5.0) == pytest.approx(0.5)
    assert weight_of(FULL_S) == 1.0
    assert weight_of(1000.0) == 1.0
    ws = [weight_of(s) for s in np.linspace(0, 20, 81)]
    assert all(b >= a for a, b in zip(ws, ws[1:], strict=False))  # never falls


def test_calm_means_low_anger_and_low_arousal_thresholds_excluded() -> None:
    assert is_calm(0.0, 0.0)
    assert is_calm(CALM_ANGER - 0.01, CALM_AROUSAL - 0.01)
    assert not is_calm(CALM_ANGER, 0.0)
    assert not is_calm(0.0, CALM_AROUSAL)
    assert not is_calm(90.0, 0.1)
    assert not is_calm(1.0, 0.9)


def test_an_empty_reference_is_no_reference() -> None:
    ref = CallerReference().reference()
    assert ref == NO_REFERENCE == Reference()
    assert ref.voice is None and ref.face is None and ref.speech is None
    assert ref.voice_weight == ref.face_weight == ref.speech_weight == 0.0


@pytest.mark.parametrize("anger, arousal", [(CALM_ANGER, 0.1), (80.0, 0.9), (3.0, CALM_AROUSAL)])
def test_only_a_calm_reading_teaches(anger: float, arousal: float) -> None:
    ref = CallerReference()
    assert not ref.offer(anger, arousal, _voice(300, -20.0), _face(30, 1.0), _emb(1.0))
    assert ref.refused == 1 and ref.accepted == 0
    assert ref.voice.rows == 0 and ref.face.rows == 0 and ref.speech_count == 0
    assert ref.reference() == NO_REFERENCE
    assert ref.offer(*CALM, _voice(300, -20.0), _face(30, 1.0), _emb(1.0))
    assert ref.accepted == 1 and ref.voice_s == 3.0 and ref.face_s == 3.0


def test_reference_fields_and_weights_follow_the_calm_evidence() -> None:
    ref = CallerReference()
    ref.offer(*CALM, voice=_voice(50, -30.0))  # 0.5 s: not enough yet
    r = ref.reference()
    assert r.voice is None and r.voice_weight == 0.0
    ref.offer(*CALM, voice=_voice(100, -10.0))
    ref.offer(*CALM, voice=_voice(100, -10.0, voiced=False))  # unvoiced: no evidence
    assert ref.voice_s == 1.5
    r = ref.reference()
    assert r.voice is not None and r.voice_weight == pytest.approx(0.15)
    assert r.voice.seconds == 1.5
    assert r.voice.mean[0] == pytest.approx((50 * -30.0 + 100 * -10.0) / 150)
    spread = np.sqrt(50 * 100 / 150**2) * 20.0  # two values 20 dB apart, 1:2
    assert r.voice.std[0] == pytest.approx(spread, rel=1e-5)
    assert r.voice.std[F0_COL] == pytest.approx(max(spread, float(voice_floor()[F0_COL])))
    assert r.voice.mean[VOICED_COL] == 0.0 and r.voice.std[VOICED_COL] == 1.0
    # no face and no speech yet: those stay empty while the voice counts
    assert r.face is None and r.face_weight == 0.0
    assert r.speech is None and r.speech_weight == 0.0
    # face: frames without a face teach nothing
    ref.offer(*CALM, face=_face(25, 0.4))
    ref.offer(*CALM, face=_face(40, 9.0, present=False))
    r = ref.reference()
    assert ref.face_s == 2.5 and r.face_weight == pytest.approx(0.25)
    assert r.face is not None and r.face.mean[0] == pytest.approx(0.4)
    np.testing.assert_allclose(r.face.std[:PRESENT_COL], face_floor()[:PRESENT_COL])
    # full weight at FULL_S
    ref.offer(*CALM, voice=_voice(round((FULL_S - 1.5) * 100), -10.0))
    assert ref.reference().voice_weight == 1.0


def test_speech_reference_is_the_mean_of_the_calm_embeddings_one_second_each() -> None:
    ref = CallerReference()
    ref.offer(*CALM, speech=_emb(1.0))
    r = ref.reference()
    assert ref.speech_count == 1
    assert r.speech_weight == pytest.approx(0.1) and r.speech is not None
    np.testing.assert_allclose(r.speech, 1.0)
    ref.offer(*CALM, speech=_emb(4.0))
    ref.offer(90.0, 0.9, speech=_emb(100.0))  # angry: not learned
    bad = _emb(2.0)
    bad[3] = np.nan
    ref.offer(*CALM, speech=bad)  # not finite: not learned
    r = ref.reference()
    assert ref.speech_count == 2 and r.speech_weight == pytest.approx(0.2)
    assert r.speech is not None and r.speech.dtype == np.float32
    np.testing.assert_allclose(r.speech, 2.5)
    # speech evidence alone gives no voice or face reference
    assert r.voice is None and r.face is None


def test_learning_stops_after_max_seconds() -> None:
    assert MAX_S == 60.0
    ref = CallerReference(max_s=2.0)
    ref.offer(*CALM, voice=_voice(150, -30.0), face=_face(15, 1.0), speech=_emb(1.0))
    ref.offer(*CALM, voice=_voice(150, -30.0), face=_face(15, 1.0), speech=_emb(1.0))
    assert ref.voice_s == 3.0 and ref.face_s == 3.0 and ref.speech_count == 2
    before = ref.reference()
    # a caller getting louder later does not drag the reference along
    assert ref.offer(*CALM, voice=_voice(500, 10.0), face=_face(50, 5.0), speech=_emb(50.0))
    after = ref.reference()
    assert ref.voice_s == 3.0 and ref.face_s == 3.0 and ref.speech_count == 2
    assert after.voice is not None and before.voice is not None
    np.testing.assert_array_equal(after.voice.mean, before.voice.mean)
    assert after.face is not None and after.face.mean[0] == pytest.approx(1.0)
    assert after.speech is not None and np.allclose(after.speech, 1.0)
    assert ref.accepted == 3  # it was judged calm, only not learned from


def test_the_default_cap_is_max_s_of_voice() -> None:
    ref = CallerReference()
    for _ in range(100):
        ref.offer(*CALM, voice=_voice(200, -20.0))
    assert ref.voice_s == MAX_S  # 2 s offers: the last one taken started at 58 s
    assert ref.reference().voice_weight == 1.0
