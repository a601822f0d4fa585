from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import (
    CLIP_Z,
    FACE_PROB_FLOOR,
    AffectNet,
    AffectOutput,
    AffectWindow,
    face_logits,
    prepare,
    validate_window,
    voiced_stats,
    zscore,
)
from avatar_agent.affect.predictor import (
    FORMAT,
    AffectEnsemble,
    AffectPredictor,
    pick_device,
    save_model,
)
from avatar_agent.affect.reference import NO_REFERENCE, Reference
from avatar_agent.perception.face import EXPRESSION_CLASSES
from avatar_agent.perception.features import (
    ENERGY_COL,
    EXPRESSION,
    F0_COL,
    FACE_DIM,
    FACE_FRAMES,
    GEOMETRY,
    N_MELS,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICED_COL,
    SpeakerBaseline,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM


def _base(dim: int, mean: float = 0.0, std: float = 1.0) -> SpeakerBaseline:
    return SpeakerBaseline(np.full(dim, mean, np.float32), np.full(dim, std, np.float32), 10.0)


def _voice_rows(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(-40, 10, (VOICE_FRAMES, VOICE_DIM)).astype(np.float32)
    v[:, VOICED_COL] = (rng.random(VOICE_FRAMES) < 0.6).astype(np.float32)
    v[v[:, VOICED_COL] < 0.5, F0_COL] = np.nan  # raw rows: unvoiced frames have no pitch
    return v


def _face_rows(rng: np.random.Generator) -> np.ndarray:
    f = rng.normal(0, 0.3, (FACE_FRAMES, FACE_DIM)).astype(np.float32)
    f[:, EXPRESSION] = rng.dirichlet(np.ones(EXPRESSION.stop - EXPRESSION.start), FACE_FRAMES)
    f[:, PRESENT_COL] = 1.0
    return f


def _ref(weight: float = 0.6) -> Reference:
    rng = np.random.default_rng(42)
    return Reference(
        voice=_base(VOICE_DIM, -35.0, 8.0), face=_base(FACE_DIM, 0.1, 0.2),
        speech=rng.normal(size=EMBED_DIM).astype(np.float32),
        voice_weight=weight, face_weight=weight, speech_weight=weight,
    )


def _window(rng: np.random.Generator, voice: bool = True, face: bool = True,
            speech: bool = True, ref: Reference = NO_REFERENCE) -> AffectWindow:
    v = _voice_rows(rng) if voice else None
    f = _face_rows(rng) if face else None
    s = rng.normal(size=EMBED_DIM).astype(np.float32) if voice and speech else None
    return AffectWindow(v, f, s, ref)


def _net(seed: int = 0) -> AffectNet:
    torch.manual_seed(seed)
    net = AffectNet()
    # a population the random rows above belong to, so the inputs are not all clipped
    rng = np.random.default_rng(seed)
    net.set_population(torch.from_numpy(np.concatenate([_voice_rows(rng) for _ in range(5)])),
                       torch.randn(64, EMBED_DIM))
    return net.eval()


@pytest.fixture
def predictor() -> AffectPredictor:
    return AffectPredictor(_net(), torch.device("cpu"), {})


def _run(net: AffectNet, windows: list[AffectWindow]) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return tuple(net(**prepare(windows)))


def test_outputs_have_the_documented_shapes_and_ranges(predictor: AffectPredictor) -> None:
    rng = np.random.default_rng(0)
    wins = [_window(rng), _window(rng, face=False), _window(rng, voice=False),
            _window(rng, speech=False, ref=_ref())]
    outs = predictor.predict(wins)
    assert len(outs) == 4
    for o in outs:
        assert len(o.probs) == len(EMOTIONS)
        assert sum(o.probs) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= o.arousal <= 1.0 and -1.0 <= o.valence <= 1.0
        assert 0.0 <= o.anger_index <= 100.0
        assert o.emotion in EMOTIONS
        assert np.isfinite(o.probs).all()
    assert predictor.predict([]) == []
    inputs = prepare(wins)
    assert inputs["voice"].shape == (4, VOICE_FRAMES, VOICE_DIM)
    assert inputs["face"].shape == (4, FACE_FRAMES, FACE_DIM)
    assert inputs["speech"].shape == (4, EMBED_DIM)
    assert inputs["ref_voice"].shape == (4, 2, VOICE_DIM)
    assert inputs["ref_face"].shape == (4, 2, FACE_DIM)
    assert inputs["ref_speech"].shape == (4, EMBED_DIM)
    assert inputs["mask"].tolist() == [[1, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 0]]
    assert inputs["weight"].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 0],
                                         [pytest.approx(0.6), pytest.approx(0.6), 0]]
    logits, arousal, valence, first = _run(predictor.net, wins)
    assert logits.shape == first.shape == (4, len(EMOTIONS))
    assert arousal.shape == valence.shape == (4,)


def test_affect_output_reads_the_angry_probability_as_the_anger_index() -> None:
    probs = [0.0] * len(EMOTIONS)
    probs[EMOTIONS.index("angry")] = 0.7
    probs[EMOTIONS.index("sad")] = 0.3
    out = AffectOutput(0.8, -0.5, tuple(probs))
    assert out.anger_index == pytest.approx(70.0) and out.emotion == "angry"
    assert out.prob_dict()["sad"] == 0.3 and list(out.prob_dict()) == list(EMOTIONS)


def test_prepare_passes_raw_rows_and_the_reference_of_present_modalities_only() -> None:
    rng = np.random.default_rng(1)
    ref = _ref(0.4)
    w = _window(rng, ref=ref)
    assert w.face is not None and w.voice is not None and w.speech is not None
    w.face[3, PRESENT_COL] = 0.0  # a frame without a face: blanked
    inp = prepare([w, _window(rng, voice=False, ref=ref)])
    np.testing.assert_array_equal(inp["voice"][0].numpy(), w.voice)  # raw, NaN pitch kept
    assert torch.isnan(inp["voice"][0, :, F0_COL]).any()
    assert torch.all(inp["face"][0, 3] == 0)
    np.testing.assert_array_equal(inp["face"][0, 4].numpy(), w.face[4])
    np.testing.assert_array_equal(inp["speech"][0].numpy(), w.speech)
    assert ref.voice is not None and ref.speech is not None
    np.testing.assert_array_equal(inp["ref_voice"][0, 0].numpy(), ref.voice.mean)
    np.testing.assert_array_equal(inp["ref_voice"][0, 1].numpy(), ref.voice.std)
    np.testing.assert_array_equal(inp["ref_speech"][0].numpy(), ref.speech)
    # face only: the voice and speech references are left at their neutral values
    assert inp["weight"][1].tolist() == [0.0, pytest.approx(0.4), 0.0]
    assert torch.all(inp["ref_voice"][1, 0] == 0) and torch.all(inp["ref_voice"][1, 1] == 1)
    assert torch.all(inp["ref_speech"][1] == 0)
    # a reference with zero weight is not passed at all
    zero = prepare([_window(rng, ref=replace(ref, voice_weight=0.0))])
    assert zero["weight"][0, 0] == 0.0 and torch.all(zero["ref_voice"][0, 1] == 1)


def test_without_reference_weight_the_answer_is_the_first_answer_over_the_temperature() -> None:
    net = _net()
    net.temperature.fill_(1.7)
    net.face_temperature.fill_(3.1)
    rng = np.random.default_rng(2)
    ref0 = replace(_ref(), voice_weight=0.0, face_weight=0.0, speech_weight=0.0)
    wins = [_window(rng), _window(rng, face=False), _window(rng, ref=ref0),
            _window(rng, voice=False), _window(rng, voice=False, ref=ref0)]
    logits, _, _, first = _run(net, wins)
    assert torch.equal(logits[:3], first[:3] / net.temperature)
    # face-only windows: the expression network's own reading, under their temperature
    inp = prepare(wins[3:])
    expected = face_logits(inp["face"], inp["face"][:, :, PRESENT_COL]) / net.face_temperature
    assert torch.equal(logits[3:], expected)
    assert not torch.allclose(logits[3:], first[3:] / net.face_temperature)


def test_a_silent_face_reads_as_the_expression_network_says() -> None:
    net = _net()
    net.face_temperature.fill_(1.0)
    rng = np.random.default_rng(5)
    w = _window(rng, voice=False)
    assert w.face is not None
    w.face[:, EXPRESSION] = 0.0
    w.face[:, EXPRESSION.start + EXPRESSION_CLASSES.index("angry")] = 0.6
    w.face[:, EXPRESSION.start + EXPRESSION_CLASSES.index("neutral")] = 0.3
    w.face[:, EXPRESSION.start + EXPRESSION_CLASSES.index("surprise")] = 0.1
    w.face[::2, PRESENT_COL] = 0.0  # frames without a face do not count
    out = AffectPredictor(net, torch.device("cpu"), {}).predict([w])[0]
    probs = dict(zip(EMOTIONS, out.probs, strict=True))
    floor = 5 * FACE_PROB_FLOOR  # calm, happy, sad, fearful, disgust get the floor
    assert probs["angry"] == pytest.approx(0.6 / (1 + floor), rel=1e-5)
    assert probs["neutral"] == pytest.approx(0.3 / (1 + floor), rel=1e-5)
    assert probs["surprised"] == pytest.approx(0.1 / (1 + floor), rel=1e-5)
    assert out.anger_index == pytest.approx(100 * probs["angry"])


def test_a_reference_refines_the_answer_by_its_weight() -> None:
    net = _net()
    rng = np.random.default_rng(3)
    base = _window(rng)
    wins = [replace(base, ref=_ref(w)) for w in (0.0, 0.3, 1.0)]
    logits, arousal, _, first = _run(net, wins)
    # the first answer is speaker-independent: the reference never touches it
    # (rows of one batch may differ in the last bits, hence the tolerance)
    assert torch.allclose(first[0], first[1], atol=1e-6, rtol=0)
    assert torch.allclose(first[0], first[2], atol=1e-6, rtol=0)
    assert torch.equal(logits[0], first[0] / net.temperature)
    assert not torch.allclose(logits[1], logits[0], atol=1e-3)
    assert not torch.allclose(logits[2], logits[1], atol=1e-3)
    assert not torch.isclose(arousal[2], arousal[0])
    # another reference of the same weight reads the same rows differently
    other = replace(_ref(1.0), voice=_base(VOICE_DIM, -60.0, 3.0))
    logits2, _, _, _ = _run(net, [replace(base, ref=other)])
    assert not torch.allclose(logits2[0], logits[2], atol=1e-3)
    # and the caller's own face geometry is read against the face reference
    face_ref = _ref(1.0)
    assert face_ref.face is not None
    moved = np.array(face_ref.face.mean)
    moved[GEOMETRY] += 0.5
    shifted = replace(face_ref, face=replace(face_ref.face, mean=moved))
    logits3, _, _, _ = _run(net, [replace(base, ref=face_ref), replace(base, ref=shifted)])
    assert not torch.allclose(logits3[0], logits3[1], atol=1e-3)


def test_a_reference_of_a_missing_modality_has_no_influence() -> None:
    net = _net()
    rng = np.random.default_rng(4)
    face_only = _window(rng, voice=False)
    ref = Reference(voice=_base(VOICE_DIM, -10.0, 2.0), voice_weight=1.0,
                    speech=np.ones(EMBED_DIM, np.float32), speech_weight=1.0)
    a = _run(net, [face_only])
    b = _run(net, [replace(face_only, ref=ref)])
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_a_masked_modality_has_no_influence(predictor: AffectPredictor) -> None:
    rng = np.random.default_rng(5)
    net = predictor.net
    w = _window(rng, face=False, ref=_ref())
    other_face = torch.from_numpy(_face_rows(rng)[None])
    a, b = prepare([w]), prepare([w])
    b["face"] = other_face  # face rows present but masked out
    b["ref_face"] = torch.randn(1, 2, FACE_DIM).abs() + 0.5
    b["weight"][:, 1] = 1.0  # even a face reference with weight counts for nothing
    with torch.inference_mode():
        for x, y in zip(net(**a), net(**b), strict=True):
            assert torch.equal(x, y)
    # and an unmasked face does change the result, so the check above can fail
    both = prepare([_window(rng)])
    both_other = dict(both)
    both_other["face"] = other_face
    with torch.inference_mode():
        assert not torch.allclose(net(**both)[0], net(**both_other)[0])


def test_the_speech_embedding_counts_only_when_present() -> None:
    net = _net()
    rng = np.random.default_rng(6)
    a = prepare([_window(rng, face=False)])
    b = dict(a)
    b["speech"] = a["speech"] + 1.0
    with torch.inference_mode():
        assert not torch.allclose(net(**a)[0], net(**b)[0])
        a["mask"][:, 2] = 0.0
        b["mask"][:, 2] = 0.0
        assert torch.equal(net(**a)[0], net(**b)[0])


def test_face_expression_counts_and_face_geometry_counts_only_against_a_reference() -> None:
    net = _net()
    rng = np.random.default_rng(7)
    w = _window(rng, voice=False)
    assert w.face is not None
    moved = w.face.copy()
    moved[:, GEOMETRY] += 1.0
    logits, _, _, first = _run(net, [w, replace(w, face=moved)])
    # the first answer reads the expression network, not raw geometry
    assert torch.allclose(first[0], first[1], atol=1e-6, rtol=0)
    assert torch.allclose(logits[0], logits[1], atol=1e-6, rtol=0)
    ref = _ref(1.0)
    # against the caller's own face the geometry counts, where the fused model reads
    # the emotions (with a voice; face-only emotions are the expression network's)
    both = _window(rng)
    assert both.face is not None
    moved_both = both.face.copy()
    moved_both[:, GEOMETRY] += 1.0
    logits, _, _, _ = _run(net, [replace(both, ref=ref), replace(both, face=moved_both, ref=ref)])
    assert not torch.allclose(logits[0], logits[1], atol=1e-3)
    _, aro, _, _ = _run(net, [replace(w, ref=ref), replace(w, face=moved, ref=ref)])
    assert not torch.allclose(aro[0], aro[1], atol=1e-4)
    other_expr = w.face.copy()
    other_expr[:, EXPRESSION] = np.roll(other_expr[:, EXPRESSION], 3, axis=1)
    _, _, _, first2 = _run(net, [w, replace(w, face=other_expr)])
    assert not torch.allclose(first2[0], first2[1], atol=1e-3)


def test_batch_results_equal_single_results(predictor: AffectPredictor) -> None:
    rng = np.random.default_rng(8)
    wins = [_window(rng, ref=_ref(0.5) if i % 2 else NO_REFERENCE) for i in range(5)]
    wins.append(_window(rng, voice=False))
    batched = predictor.predict(wins)
    for w, b in zip(wins, batched, strict=True):
        single = predictor.predict([w])[0]
        assert np.allclose(single.probs, b.probs, atol=1e-5)
        assert single.arousal == pytest.approx(b.arousal, abs=1e-5)


def test_bad_windows_are_rejected_with_a_reason() -> None:
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="neither"):
        validate_window(AffectWindow(None, None))
    with pytest.raises(ValueError, match="voice rows"):
        validate_window(AffectWindow(np.zeros((10, VOICE_DIM), np.float32), None))
    with pytest.raises(ValueError, match="face rows"):
        validate_window(AffectWindow(None, np.zeros((FACE_FRAMES, FACE_DIM - 7), np.float32)))
    w = _window(rng)
    assert w.face is not None
    w.face[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        validate_window(w)
    good = _window(rng, ref=_ref())
    validate_window(good)  # NaN pitch in raw voice rows is fine
    assert good.voice is not None and np.isnan(good.voice).any()
    validate_window(_window(rng, voice=False))
    w = _window(rng)
    assert w.speech is not None
    w.speech[0] = np.inf
    with pytest.raises(ValueError, match="speech embedding"):
        validate_window(w)
    short = replace(_window(rng), speech=np.zeros(EMBED_DIM - 1, np.float32))
    with pytest.raises(ValueError, match="speech embedding"):
        validate_window(short)
    bad_ref = replace(_ref(), speech=np.full(EMBED_DIM, np.nan, np.float32))
    with pytest.raises(ValueError, match="speech embedding"):
        validate_window(_window(rng, ref=bad_ref))
    for ref in (replace(_ref(), voice=_base(VOICE_DIM - 1)),
                replace(_ref(), face=_base(FACE_DIM, mean=np.nan))):
        with pytest.raises(ValueError, match="reference"):
            validate_window(_window(rng, ref=ref))


def test_cpu_fallback_and_explicit_cuda_without_gpu() -> None:
    assert pick_device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert pick_device("auto").type == "cuda"
    else:
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")


def _calibrated(seed: int) -> AffectNet:
    torch.manual_seed(seed)
    net = AffectNet(hidden=32, dropout=0.1)
    net.set_population(torch.randn(300, VOICE_DIM) * 5 - 30, torch.randn(50, EMBED_DIM) * 3 + 1)
    net.temperature.fill_(1.3 + seed)
    net.face_temperature.fill_(2.2)
    net.arousal_shift.fill_(0.4)
    return net.eval()


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    nets = [_calibrated(1), _calibrated(2)]
    path = tmp_path / "sub" / "m.pt"
    save_model(path, AffectEnsemble(nets), {"hidden": 32, "dropout": 0.1}, {"note": "x"})
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["format"] == FORMAT == "avatar-agent-affect/3"
    assert len(blob["members"]) == 2
    loaded = AffectPredictor.load(path, "cpu")
    assert loaded.meta == {"note": "x"} and loaded.device.type == "cpu"
    assert loaded.members == 2 and not loaded.net.training
    for got, net in zip(loaded.net.members, nets, strict=True):
        for name in ("voice_mean", "voice_std", "speech_mean", "speech_std", "temperature",
                     "face_temperature", "arousal_shift"):
            assert torch.equal(getattr(got, name), getattr(net, name)), name
    assert float(loaded.net.members[1].temperature) == pytest.approx(3.3)
    original = AffectPredictor(AffectEnsemble(nets), torch.device("cpu"), {}, compile=False)
    rng = np.random.default_rng(10)
    wins = [_window(rng), _window(rng, voice=False), _window(rng, ref=_ref())]
    for a, b in zip(loaded.predict(wins), original.predict(wins), strict=True):
        assert np.allclose(a.probs, b.probs, atol=1e-5)
        assert a.arousal == pytest.approx(b.arousal, abs=1e-5)
        assert a.valence == pytest.approx(b.valence, abs=1e-5)


def test_a_single_network_file_of_the_previous_format_still_loads(tmp_path: Path) -> None:
    net = _calibrated(1)
    path = tmp_path / "old.pt"
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"format": "avatar-agent-affect/2", "hparams": {"hidden": 32, "dropout": 0.1},
                "state_dict": state, "meta": {}}, path)
    loaded = AffectPredictor.load(path, "cpu")
    assert loaded.members == 1
    w = [_window(np.random.default_rng(3))]
    direct = AffectPredictor(net, torch.device("cpu"), {}, compile=False).predict(w)[0]
    assert np.allclose(loaded.predict(w)[0].probs, direct.probs, atol=1e-5)


def test_the_ensemble_averages_its_members_probabilities_arousal_and_valence() -> None:
    nets = [_calibrated(1), _calibrated(2), _calibrated(3)]
    rng = np.random.default_rng(12)
    wins = [_window(rng), _window(rng, face=False), _window(rng, voice=False),
            _window(rng, ref=_ref(0.5))]
    singles = [AffectPredictor(n, torch.device("cpu"), {}, compile=False).predict(wins)
               for n in nets]
    eager = AffectPredictor(AffectEnsemble(nets), torch.device("cpu"), {}, compile=False)
    traced = AffectPredictor(AffectEnsemble(nets), torch.device("cpu"), {})
    for i, (e, t) in enumerate(zip(eager.predict(wins), traced.predict(wins), strict=True)):
        mean = np.mean([s[i].probs for s in singles], axis=0)
        assert np.allclose(e.probs, mean, atol=1e-6)
        assert e.arousal == pytest.approx(np.mean([s[i].arousal for s in singles]), abs=1e-6)
        assert e.valence == pytest.approx(np.mean([s[i].valence for s in singles]), abs=1e-6)
        # the traced graph reads as the modules do, at any batch size
        assert np.allclose(t.probs, e.probs, atol=1e-5)
        assert t.arousal == pytest.approx(e.arousal, abs=1e-5)
        assert np.allclose(traced.predict([wins[i]])[0].probs, e.probs, atol=1e-5)
    # the members disagree, so the mean is not any one of them
    assert not np.allclose(singles[0][0].probs, singles[1][0].probs, atol=1e-3)
    with pytest.raises(ValueError, match="at least one"):
        AffectEnsemble([])


def test_load_refuses_a_missing_file_junk_and_a_wrong_format(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train"):
        AffectPredictor.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(Exception):  # noqa: B017 - torch's own unpickling error
        AffectPredictor.load(tmp_path / "junk.pt")
    net = AffectNet()
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    old = tmp_path / "old.pt"
    torch.save({"format": "avatar-agent-affect/1", "hparams": {}, "state_dict": state}, old)
    with pytest.raises(ValueError, match="not an avatar-agent affect model"):
        AffectPredictor.load(old, "cpu")
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)  # weights without the wrapper
    with pytest.raises(ValueError, match=FORMAT):
        AffectPredictor.load(plain, "cpu")


def test_set_population_reads_the_training_speakers_rows() -> None:
    rng = np.random.default_rng(11)
    rows = rng.normal(-30, 6, (400, VOICE_DIM)).astype(np.float32)
    rows[:, VOICED_COL] = 1.0
    rows[::4, F0_COL] = np.nan  # a pitch the tracker missed
    rows[:, ENERGY_COL] = -50.0  # constant: its spread is floored, not 0
    emb = rng.normal(2, 3, (80, EMBED_DIM)).astype(np.float32)
    net = AffectNet()
    net.set_population(torch.from_numpy(rows), torch.from_numpy(emb))
    finite = rows[~np.isnan(rows[:, F0_COL])]
    assert float(net.voice_mean[F0_COL]) == pytest.approx(finite[:, F0_COL].mean(), rel=1e-4)
    assert float(net.voice_std[F0_COL]) == pytest.approx(finite[:, F0_COL].std(), rel=1e-3)
    np.testing.assert_allclose(net.voice_mean[:N_MELS].numpy(), rows[:, :N_MELS].mean(0),
                               rtol=1e-4)
    np.testing.assert_allclose(net.voice_std[:N_MELS].numpy(), rows[:, :N_MELS].std(0),
                               rtol=1e-3)
    assert float(net.voice_std[ENERGY_COL]) == pytest.approx(1e-3)
    assert float(net.voice_mean[VOICED_COL]) == 0.0 and float(net.voice_std[VOICED_COL]) == 1.0
    assert torch.isfinite(net.voice_mean).all() and torch.isfinite(net.voice_std).all()
    np.testing.assert_allclose(net.speech_mean.numpy(), emb.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(net.speech_std.numpy(), emb.std(0, ddof=1), rtol=1e-3)


def test_zscore_reads_nan_as_the_mean_and_clips() -> None:
    x = torch.tensor([[1.0, float("nan"), 100.0, -100.0, float("inf"), 3.0]])
    mean = torch.tensor([1.0, 5.0, 0.0, 0.0, 0.0, 1.0])
    std = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    z = zscore(x, mean, std)
    assert z.tolist() == [[0.0, 0.0, CLIP_Z, -CLIP_Z, CLIP_Z, 4.0]]
    assert CLIP_Z == 6.0


def test_voiced_stats_are_the_mean_and_spread_of_flagged_frames_only() -> None:
    rng = np.random.default_rng(12)
    voice = rng.normal(size=(2, VOICE_FRAMES, VOICE_DIM)).astype(np.float32)
    flags = np.zeros((2, VOICE_FRAMES), np.float32)
    flags[0, 50:150] = 1.0  # half flagged; the second window never is
    # the flags are their own input: what the rows' voicing column holds is ignored
    voice[:, :, VOICED_COL] = 1.0
    out = voiced_stats(torch.from_numpy(voice), torch.from_numpy(flags)).numpy()
    assert out.shape == (2, 2 * VOICE_DIM + 1)
    rows = voice[0, 50:150]
    assert np.allclose(out[0, :VOICE_DIM], rows.mean(axis=0), atol=1e-5)
    std = out[0, VOICE_DIM:-1]
    assert np.allclose(std[:VOICED_COL], rows.std(axis=0)[:VOICED_COL], atol=2e-3)
    assert std[VOICED_COL] == pytest.approx(1e-3)  # a constant column: the floor
    assert out[0, -1] == pytest.approx(0.5)
    assert np.allclose(out[1, :VOICE_DIM], 0.0) and out[1, -1] == 0.0


def test_the_anger_scaling_recalibrates_p_angry_and_keeps_the_other_classes_proportions() -> None:
    from avatar_agent.affect.predictor import ANGRY

    ens = AffectEnsemble([_calibrated(1), _calibrated(2)])
    rng = np.random.default_rng(13)
    wins = [_window(rng), _window(rng, face=False), _window(rng, voice=False)]
    plain = AffectPredictor(ens, torch.device("cpu"), {}, compile=False).predict(wins)
    ens.set_anger_scaling(0.5, 0.4)
    eager = AffectPredictor(ens, torch.device("cpu"), {}, compile=False).predict(wins)
    traced = AffectPredictor(ens, torch.device("cpu"), {}).predict(wins)
    for a, b, t in zip(plain, eager, traced, strict=True):
        p = np.clip(a.probs[ANGRY], 1e-12, 1 - 1e-12)
        want = 1 / (1 + np.exp(-(0.5 * np.log(p / (1 - p)) + 0.4)))
        assert b.probs[ANGRY] == pytest.approx(want, abs=1e-5)
        assert sum(b.probs) == pytest.approx(1.0, abs=1e-5)
        others = [i for i in range(len(EMOTIONS)) if i != ANGRY]
        ra = np.array([a.probs[i] for i in others])
        rb = np.array([b.probs[i] for i in others])
        assert np.allclose(rb, ra * (1 - b.probs[ANGRY]) / (1 - a.probs[ANGRY]), atol=1e-5)
        assert b.arousal == pytest.approx(a.arousal, abs=1e-6)
        assert np.allclose(t.probs, b.probs, atol=1e-5)
    assert any(abs(a.anger_index - b.anger_index) > 1.0 for a, b in zip(plain, eager, strict=True))


def test_the_anger_scaling_is_saved_and_loaded(tmp_path: Path) -> None:
    ens = AffectEnsemble([_calibrated(1)])
    ens.set_anger_scaling(0.6, -0.3)
    path = tmp_path / "m.pt"
    save_model(path, ens, {"hidden": 32, "dropout": 0.1}, {})
    loaded = AffectPredictor.load(path, "cpu")
    assert float(loaded.net.anger_scale) == pytest.approx(0.6)
    assert float(loaded.net.anger_shift) == pytest.approx(-0.3)
    w = [_window(np.random.default_rng(4))]
    direct = AffectPredictor(ens, torch.device("cpu"), {}, compile=False).predict(w)[0]
    assert np.allclose(loaded.predict(w)[0].probs, direct.probs, atol=1e-5)
