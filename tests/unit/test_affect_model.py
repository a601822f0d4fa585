from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avatar_agent.affect.features import (
    FACE_DIM,
    FACE_FRAMES,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICED_COL,
    SpeakerBaseline,
)
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import (
    AffectNet,
    AffectPredictor,
    AffectWindow,
    pick_device,
    prepare,
    save_model,
    validate_window,
    voiced_stats,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM


def _base(dim: int) -> SpeakerBaseline:
    return SpeakerBaseline(np.zeros(dim, np.float32), np.ones(dim, np.float32), 10.0)


def _window(rng: np.random.Generator, voice: bool = True, face: bool = True) -> AffectWindow:
    v = rng.normal(size=(VOICE_FRAMES, VOICE_DIM)).astype(np.float32) if voice else None
    f = rng.normal(size=(FACE_FRAMES, FACE_DIM)).astype(np.float32) if face else None
    if f is not None:
        f[:, -1] = 1.0
    vb = _base(VOICE_DIM) if voice else None
    s = rng.normal(size=(2, EMBED_DIM)).astype(np.float32) if voice else None
    return AffectWindow(v, vb, f, _base(FACE_DIM) if face else None,
                        s[0] if s is not None else None, s[1] if s is not None else None)


@pytest.fixture(params=[(False, False), (True, False), (True, True)],
                ids=["conv", "conv+stats", "conv+stats+speech"])
def predictor(request: pytest.FixtureRequest) -> AffectPredictor:
    torch.manual_seed(0)
    stats, speech = request.param
    return AffectPredictor(AffectNet(stats=stats, speech=speech), torch.device("cpu"), {})


def test_outputs_have_the_documented_shapes_and_ranges(predictor: AffectPredictor) -> None:
    rng = np.random.default_rng(0)
    wins = [_window(rng), _window(rng, face=False), _window(rng, voice=False)]
    outs = predictor.predict(wins)
    assert len(outs) == 3
    for o in outs:
        assert len(o.probs) == len(EMOTIONS)
        assert sum(o.probs) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= o.arousal <= 1.0 and -1.0 <= o.valence <= 1.0
        assert 0.0 <= o.anger_index <= 100.0
        assert o.emotion in EMOTIONS
    inputs = prepare(wins)
    assert inputs["voice"].shape == (3, VOICE_FRAMES, VOICE_DIM)
    assert inputs["face"].shape == (3, FACE_FRAMES, FACE_DIM)
    assert inputs["speech"].shape == (3, 2, EMBED_DIM)
    assert inputs["mask"].tolist() == [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_the_speech_embedding_counts_only_when_present() -> None:
    torch.manual_seed(0)
    net = AffectNet(stats=True, speech=True).eval()
    rng = np.random.default_rng(6)
    w = _window(rng, face=False)
    a = prepare([w])
    b = dict(a)
    b["speech"] = a["speech"] + 1.0
    with torch.inference_mode():
        assert not torch.allclose(net(**a)[0], net(**b)[0])
        a["mask"][:, 2] = 0.0
        b["mask"][:, 2] = 0.0
        assert torch.allclose(net(**a)[0], net(**b)[0])
    with pytest.raises(ValueError, match="speech"):
        net(**{k: v for k, v in a.items() if k != "speech"})


def test_a_masked_modality_has_no_influence(predictor: AffectPredictor) -> None:
    rng = np.random.default_rng(1)
    w = _window(rng, face=False)
    other_face = rng.normal(size=(FACE_FRAMES, FACE_DIM)).astype(np.float32)
    net = predictor.net
    a = prepare([w])
    b = prepare([w])
    b["face"] = torch.from_numpy(other_face[None])  # face rows present but masked out
    with torch.inference_mode():
        la, _, _ = net(**a)
        lb, _, _ = net(**b)
    assert torch.allclose(la, lb)
    # and an unmasked face does change the result, so the check above can fail
    both = prepare([_window(rng)])
    both_other = dict(both)
    both_other["face"] = torch.from_numpy(other_face[None])
    with torch.inference_mode():
        assert not torch.allclose(net(**both)[0], net(**both_other)[0])


def test_batch_results_equal_single_results(predictor: AffectPredictor) -> None:
    rng = np.random.default_rng(2)
    wins = [_window(rng) for _ in range(5)]
    batched = predictor.predict(wins)
    for w, b in zip(wins, batched, strict=True):
        single = predictor.predict([w])[0]
        assert np.allclose(single.probs, b.probs, atol=1e-5)


def test_bad_windows_are_rejected_with_a_reason() -> None:
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="neither"):
        validate_window(AffectWindow(None, None, None, None))
    short = AffectWindow(np.zeros((10, VOICE_DIM), np.float32), _base(VOICE_DIM), None, None)
    with pytest.raises(ValueError, match="voice rows"):
        validate_window(short)
    w = _window(rng)
    assert w.face is not None
    w.face[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        validate_window(w)
    validate_window(_window(rng))
    w = _window(rng)
    assert w.speech is not None
    w.speech[0] = np.inf
    with pytest.raises(ValueError, match="speech embedding"):
        validate_window(w)


def test_cpu_fallback_and_explicit_cuda_without_gpu() -> None:
    assert pick_device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert pick_device("auto").type == "cuda"
    else:
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")


def test_save_and_load_round_trip(tmp_path: Path, predictor: AffectPredictor) -> None:
    path = tmp_path / "m.pt"
    hparams = {"hidden": 96, "dropout": 0.3, "stats": predictor.net.stats,
               "speech": predictor.net.use_speech}
    if predictor.net.use_speech:  # the embedding's scale is part of the saved model
        predictor.net.set_speech_scale(torch.randn(50, EMBED_DIM) * 3.0 + 1.0)
    save_model(path, predictor.net, hparams, {"note": "x"})
    loaded = AffectPredictor.load(path, "cpu")
    assert loaded.net.use_speech == predictor.net.use_speech
    assert torch.equal(loaded.net.speech_mean, predictor.net.speech_mean)
    assert torch.equal(loaded.net.speech_std, predictor.net.speech_std)
    w = _window(np.random.default_rng(4))
    assert np.allclose(loaded.predict([w])[0].probs, predictor.predict([w])[0].probs, atol=1e-6)
    assert loaded.meta == {"note": "x"}
    with pytest.raises(FileNotFoundError, match="train"):
        AffectPredictor.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(Exception):  # noqa: B017 - torch's own unpickling error
        AffectPredictor.load(tmp_path / "junk.pt")


def test_voiced_stats_are_the_mean_and_spread_of_voiced_frames_only() -> None:
    rng = np.random.default_rng(5)
    voice = rng.normal(size=(2, VOICE_FRAMES, VOICE_DIM)).astype(np.float32)
    voice[:, :, VOICED_COL] = 0.0
    voice[0, 50:150, VOICED_COL] = 1.0  # half voiced; the second window never is
    out = voiced_stats(torch.from_numpy(voice)).numpy()
    assert out.shape == (2, 2 * VOICE_DIM + 1)
    rows = voice[0, 50:150]
    assert np.allclose(out[0, :VOICE_DIM], rows.mean(axis=0), atol=1e-5)
    assert np.allclose(out[0, VOICE_DIM:-1], rows.std(axis=0), atol=2e-3)  # floor 1e-3
    assert out[0, -1] == pytest.approx(0.5)
    assert np.allclose(out[1, :VOICE_DIM], 0.0) and out[1, -1] == 0.0
