from __future__ import annotations

import math
import os
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar_agent.affect.call_core import MIN_VOICED_S
from avatar_agent.affect.labels import EMOTIONS, ClipLabel, arousal_of
from avatar_agent.affect.model import AffectNet
from avatar_agent.affect.reference import NO_REFERENCE, Reference, weight_of
from avatar_agent.perception.features import (
    ENERGY_COL,
    EXPRESSION,
    F0_COL,
    FACE_DIM,
    FACE_FRAMES,
    FACE_HZ,
    N_MELS,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICE_HZ,
    VOICED_COL,
    face_floor,
    silence_row,
    voice_floor,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM
from avatar_agent.training.augment import GAIN_DB, spec_augment, vary_gain
from avatar_agent.training.calibration import fit_temperature
from avatar_agent.training.dataset import (
    SPEECH_GRID_S,
    ClipFeatures,
    calm_references,
    reference_of,
    speech_ends,
    window_at,
)
from avatar_agent.training.train import TrainOptions, assign_folds, fit


def _label(speaker: str, emotion: str) -> ClipLabel:
    return ClipLabel("synth", f"synth:{speaker}", emotion, emotion, arousal_of(emotion), 1,
                     "audio-visual")


def _clip(
    speaker: str, emotion: str, value: float, seconds: float = 1.5,
    speech: np.ndarray | None = None, face: bool = False,
) -> ClipFeatures:
    """A clip whose voiced rows (and face rows) all hold `value`."""
    n = round(seconds * VOICE_HZ)
    voice = np.full((n, VOICE_DIM), value, np.float32)
    voice[:, VOICED_COL] = 1.0
    rows = None
    if face:
        rows = np.full((round(seconds * FACE_HZ), FACE_DIM), value, np.float32)
        rows[:, PRESENT_COL] = 1.0
    ends = speech_ends(seconds) if speech is not None else None
    return ClipFeatures(Path(f"{speaker}-{emotion}-{value}"), _label(speaker, emotion), voice,
                        rows, None, speech, ends)


# --- augmentation ---------------------------------------------------------------------


def _raw_voice(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(b, VOICE_FRAMES, VOICE_DIM, generator=g) * 5 - 40
    v[:, :, VOICED_COL] = (torch.rand(b, VOICE_FRAMES, generator=g) < 0.6).float()
    v[:, :, F0_COL] = torch.where(v[:, :, VOICED_COL] > 0.5, v[:, :, F0_COL], math.nan)
    v[:, :20] = torch.from_numpy(silence_row())  # leading silence, as a padded window
    return v


def test_spec_augment_writes_nan_into_one_short_span_and_a_few_bands() -> None:
    voice = torch.ones(64, VOICE_FRAMES, VOICE_DIM)
    voice[:, ::3, VOICED_COL] = 0.0
    flags = voice[:, :, VOICED_COL].clone()
    spec_augment(voice, torch.Generator().manual_seed(0))
    assert torch.equal(voice[:, :, VOICED_COL], flags)  # voicing is never masked
    spans = bands = 0
    others = [c for c in range(VOICE_DIM) if c != VOICED_COL]
    for w in voice:
        nan = torch.isnan(w)
        rest = w[:, others]
        assert torch.all(rest[~nan[:, others]] == 1.0)  # what is not masked is untouched
        span_rows = nan[:, others].all(dim=1)
        assert int(span_rows.sum()) <= 30
        if span_rows.any():  # the masked rows are one contiguous span
            idx = torch.nonzero(span_rows).flatten()
            assert int(idx[-1] - idx[0]) + 1 == len(idx)
            spans += 1
        kept = nan[~span_rows]
        band_cols = kept.all(dim=0)
        assert torch.equal(kept.any(dim=0), band_cols)  # a band is masked in every frame
        assert int(band_cols.sum()) <= 4
        assert not band_cols[N_MELS:].any()  # pitch, voicing and energy are not band-masked
        if band_cols.any():
            idx = torch.nonzero(band_cols).flatten()
            assert int(idx[-1] - idx[0]) + 1 == len(idx)
            bands += 1
    assert spans > 32 and bands > 32  # most windows get both
    again = torch.ones(64, VOICE_FRAMES, VOICE_DIM)
    again[:, ::3, VOICED_COL] = 0.0
    spec_augment(again, torch.Generator().manual_seed(0))
    assert torch.equal(torch.isnan(voice), torch.isnan(again))  # a seed gives the same masks
    other = torch.ones(64, VOICE_FRAMES, VOICE_DIM)
    spec_augment(other, torch.Generator().manual_seed(1))
    assert not torch.equal(torch.isnan(voice), torch.isnan(other))


def test_vary_gain_shifts_the_level_of_sound_by_one_amount_per_window() -> None:
    voice = _raw_voice(32)
    before = voice.clone()
    vary_gain(voice, torch.Generator().manual_seed(0))
    live = before[:, :, ENERGY_COL] > -99.0
    assert live[:, 20:].all() and not live[:, :20].any()
    gains = []
    for i in range(len(voice)):
        d = voice[i] - before[i]
        g = float(d[20, ENERGY_COL])
        assert abs(g) <= GAIN_DB
        assert torch.allclose(d[20:, :N_MELS], torch.full_like(d[20:, :N_MELS], g), atol=1e-4)
        assert torch.allclose(d[20:, ENERGY_COL], torch.full((VOICE_FRAMES - 20,), g), atol=1e-4)
        gains.append(g)
    # silence stays silence; pitch and voicing are left alone
    assert torch.equal(voice[:, :20, :N_MELS], before[:, :20, :N_MELS])
    assert torch.equal(voice[:, :20, ENERGY_COL], before[:, :20, ENERGY_COL])
    assert torch.equal(voice[:, :, VOICED_COL], before[:, :, VOICED_COL])
    assert torch.equal(torch.isnan(voice[:, :, F0_COL]), torch.isnan(before[:, :, F0_COL]))
    f0 = ~torch.isnan(before[:, :, F0_COL])
    assert torch.equal(voice[:, :, F0_COL][f0], before[:, :, F0_COL][f0])
    assert np.std(gains) > 2.0 and max(gains) > 0 > min(gains)  # every window its own


# --- folds and references -------------------------------------------------------------


def test_folds_split_speakers_and_mix_corpora() -> None:
    speakers = [f"ravdess:{i:02d}" for i in range(1, 21)] + [f"emodb:{i}" for i in range(10)]
    folds = assign_folds(speakers)
    assert set(folds) == set(speakers) and set(folds.values()) == set(range(5))
    for k in range(5):
        members = [s for s, f in folds.items() if f == k]
        assert {s.split(":")[0] for s in members} == {"ravdess", "emodb"}
        assert len(members) == 6


def _speaker_clips() -> list[ClipFeatures]:
    clips = [
        _clip("a", "neutral", 10.0), _clip("a", "calm", 11.0), _clip("a", "neutral", 12.0),
        _clip("a", "angry", 13.0), _clip("a", "happy", 14.0),
        _clip("b", "calm", 100.0), _clip("b", "angry", 101.0),
        _clip("c", "angry", 200.0), _clip("c", "sad", 201.0),  # never calm
    ]
    return clips


def test_calm_references_come_from_other_calm_clips_of_the_same_speaker() -> None:
    clips = _speaker_clips()
    refs = calm_references(clips, random.Random(0), k=10)  # k >= all: every other calm clip
    assert len(refs) == len(clips)
    want = {
        10.0: 11.5, 11.0: 11.0, 12.0: 10.5,  # a calm clip: the speaker's other calm clips
        13.0: 11.0, 14.0: 11.0,  # a clip of another emotion: all calm clips
        101.0: 100.0,
    }
    for clip, ref in zip(clips, refs, strict=True):
        own = float(clip.voice[0, 0]) if clip.voice is not None else math.nan
        if own in want:
            assert ref.voice is not None, own
            assert float(ref.voice.mean[0]) == pytest.approx(want[own])
        else:  # b's only calm clip has no other; c has none at all
            assert ref is NO_REFERENCE or ref == NO_REFERENCE, own
    # 1.5 s a clip: the weight follows the seconds behind the reference
    assert refs[3].voice_weight == pytest.approx(weight_of(4.5))
    assert refs[0].voice_weight == pytest.approx(weight_of(3.0))


def test_calm_references_draw_k_clips_at_random() -> None:
    clips = _speaker_clips()
    seen: set[float] = set()
    for seed in range(20):
        refs = calm_references(clips, random.Random(seed), k=1)
        for clip, ref in zip(clips, refs, strict=True):
            if clip.label.speaker != "synth:a":
                continue
            assert ref.voice is not None and ref.voice.seconds == 1.5  # one clip
            picked = float(ref.voice.mean[0])
            assert picked in (10.0, 11.0, 12.0) and picked != float(clip.voice[0, 0])
            seen.add(picked)
    assert seen == {10.0, 11.0, 12.0}
    again = calm_references(clips, random.Random(3), k=2)
    same = calm_references(clips, random.Random(3), k=2)
    assert [r.voice_weight for r in again] == [r.voice_weight for r in same]


def test_reference_of_pools_the_clips_moments_and_embeddings() -> None:
    assert reference_of([]) is NO_REFERENCE
    s1 = np.repeat(np.array([[1.0], [2.0], [3.0]], np.float32), EMBED_DIM, axis=1)
    s2 = np.repeat(np.array([[10.0]] * 4, np.float32), EMBED_DIM, axis=1)
    a = _clip("a", "neutral", -20.0, seconds=2.5, speech=s1, face=True)
    b = _clip("a", "calm", -30.0, seconds=3.2, speech=s2)
    assert a.voice is not None
    a.voice[:50, VOICED_COL] = 0.0  # 0.5 s of a's rows are unvoiced: no evidence
    ref = reference_of([a, b])
    assert isinstance(ref, Reference)
    assert ref.voice is not None and ref.voice.seconds == pytest.approx(2.0 + 3.2)
    assert ref.voice_weight == pytest.approx(weight_of(5.2))
    assert float(ref.voice.mean[0]) == pytest.approx((200 * -20.0 + 320 * -30.0) / 520)
    assert float(ref.voice.std[0]) > float(voice_floor()[0])
    # face only from a: 2.5 s
    assert ref.face is not None and ref.face_weight == pytest.approx(0.25)
    assert float(ref.face.mean[0]) == pytest.approx(-20.0)
    np.testing.assert_allclose(ref.face.std[EXPRESSION], face_floor()[EXPRESSION])
    # speech: the mean of all 7 embeddings (not of the two clips' means), each worth
    # SPEECH_GRID_S seconds of evidence
    assert ref.speech is not None and ref.speech.shape == (EMBED_DIM,)
    np.testing.assert_allclose(ref.speech, (1 + 2 + 3 + 40) / 7, rtol=1e-6)
    assert ref.speech_weight == pytest.approx(weight_of(7 * SPEECH_GRID_S))


def test_reference_of_without_enough_evidence_leaves_fields_empty() -> None:
    one = np.ones((1, EMBED_DIM), np.float32)
    short = _clip("a", "neutral", -20.0, seconds=0.9, speech=one)
    ref = reference_of([short])
    assert ref.voice is None and ref.voice_weight == 0.0  # under a second of speech
    assert ref.face is None and ref.face_weight == 0.0
    assert ref.speech is None and ref.speech_weight == 0.0  # one embedding: 0.5 s
    two = np.ones((2, EMBED_DIM), np.float32)
    ref = reference_of([_clip("a", "neutral", -20.0, seconds=0.9, speech=two)])
    assert ref.speech is not None and ref.speech_weight == pytest.approx(0.1)
    nothing = reference_of([_clip("a", "neutral", -20.0, seconds=5.0)])
    assert nothing.voice_weight == 0.5 and nothing.speech is None
    assert nothing.speech_weight == 0.0


# --- windows of clips -----------------------------------------------------------------


def test_speech_ends_lie_on_the_half_second_grid() -> None:
    assert SPEECH_GRID_S == 0.5
    assert np.allclose(speech_ends(1.5), [1.5])  # short clip: one window, padded
    assert np.allclose(speech_ends(2.0), [2.0])
    assert np.allclose(speech_ends(3.0), [2.0, 2.5, 3.0])
    assert np.allclose(speech_ends(3.2), [2.0, 2.5, 3.0, 3.2])
    ends = speech_ends(7.77)
    assert ends.dtype == np.float32 and np.all(np.diff(ends) > 0) and ends[-1] == np.float32(7.77)


def _indexed_clip(seconds: float = 3.2) -> ClipFeatures:
    n = round(seconds * VOICE_HZ)
    voice = np.zeros((n, VOICE_DIM), np.float32)
    voice[:, 0] = np.arange(n)
    voice[:, VOICED_COL] = 1.0
    face = np.zeros((round(seconds * FACE_HZ), FACE_DIM), np.float32)
    face[:, 0] = np.arange(len(face))
    face[:, PRESENT_COL] = 1.0
    ends = speech_ends(seconds)
    speech = np.repeat(np.arange(len(ends), dtype=np.float32)[:, None], EMBED_DIM, axis=1)
    return ClipFeatures(Path("c"), _label("a", "angry"), voice, face, None, speech, ends)


def test_window_at_cuts_the_two_seconds_ending_at_the_given_time() -> None:
    clip = _indexed_clip()
    ref = reference_of([_clip("a", "calm", -30.0)])
    w = window_at(clip, 2.5, ref)
    assert w.ref is ref
    assert w.voice is not None and w.voice.shape == (VOICE_FRAMES, VOICE_DIM)
    assert w.voice[0, 0] == 50 and w.voice[-1, 0] == 249
    assert w.face is not None and w.face.shape == (FACE_FRAMES, FACE_DIM)
    assert w.face[0, 0] == 5 and w.face[-1, 0] == 24
    assert window_at(clip, 2.5).ref == NO_REFERENCE
    early = window_at(clip, 1.0)  # padded at the start: silence, no face
    assert early.voice is not None and early.face is not None
    np.testing.assert_array_equal(early.voice[:100], np.repeat(silence_row()[None], 100, 0))
    assert early.voice[100, 0] == 0 and early.voice[-1, 0] == 99
    assert np.all(early.face[:10] == 0) and early.face[10, 0] == 0


@pytest.mark.parametrize("end, k", [(2.0, 0), (2.3, 0), (2.49, 0), (2.5, 1), (2.99, 1),
                                    (3.0, 2), (3.1, 2), (3.2, 3)])
def test_window_at_takes_the_newest_embedding_never_a_future_one(end: float, k: int) -> None:
    clip = _indexed_clip()
    w = window_at(clip, end)
    assert w.speech is not None and w.speech[0] == k
    assert clip.speech_ends is not None and clip.speech_ends[k] <= end + 1e-3


def test_window_at_before_the_first_embedding_has_none() -> None:
    w = window_at(_indexed_clip(), 1.99)  # the first embedding ends at 2 s: the future
    assert w.has_voice and w.speech is None
    short = _indexed_clip(1.5)  # one embedding, at the clip's end
    assert window_at(short, 1.0).speech is None
    end = window_at(short, 1.5)
    assert end.speech is not None and end.speech[0] == 0


def test_window_at_needs_enough_voice_and_face() -> None:
    clip = _indexed_clip()
    assert clip.voice is not None and clip.face is not None
    need = round(MIN_VOICED_S * VOICE_HZ)
    clip.voice[:, VOICED_COL] = 0.0
    clip.voice[320 - need :, VOICED_COL] = 1.0
    assert window_at(clip, 3.2).has_voice
    clip.voice[320 - need, VOICED_COL] = 0.0
    w = window_at(clip, 3.2)
    assert not w.has_voice and w.has_face
    assert not w.has_speech  # an embedding is only read with a voice
    clip.face[:, PRESENT_COL] = 0.0
    clip.face[-FACE_FRAMES // 2 :, PRESENT_COL] = 1.0
    assert window_at(clip, 3.2).has_face
    clip.face[-FACE_FRAMES // 2, PRESENT_COL] = 0.0
    w = window_at(clip, 3.2)
    assert not w.has_face and not w.has_voice
    no_speech = ClipFeatures(Path("d"), clip.label, _indexed_clip().voice, None)
    w = window_at(no_speech, 2.5)
    assert w.has_voice and not w.has_speech and not w.has_face


# --- calibration and a tiny training run ----------------------------------------------


def _sample_labels(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p], np.int64)


def test_fit_temperature_finds_how_overconfident_the_logits_are() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, len(EMOTIONS)))
    labels = _sample_labels(logits, rng)  # labels drawn from the logits: calibrated
    assert 0.85 < fit_temperature(logits, labels) < 1.15
    over = fit_temperature(3.0 * logits, labels)
    assert 2.5 < over < 3.6
    under = fit_temperature(0.5 * logits, labels)
    assert 0.4 < under < 0.6
    # clips without a class do not count; too few with one: no change
    masked = labels.copy()
    masked[20:] = -100
    assert fit_temperature(3.0 * logits, masked) != 1.0
    masked[19:] = -100
    assert fit_temperature(3.0 * logits, masked) == 1.0


def _synthetic_corpus(speakers: int, rng: np.random.Generator) -> list[ClipFeatures]:
    """Clips whose level and face express the emotion, on each speaker's own voice."""
    clips = []
    for s in range(speakers):
        pitch = rng.normal(0, 4)
        for emotion in ("neutral", "calm", "angry", "happy", "sad"):
            e = EMOTIONS.index(emotion)
            for rep in range(2):
                n = 300
                voice = rng.normal(-45 + 3 * e, 4, (n, VOICE_DIM)).astype(np.float32)
                voice[:, VOICED_COL] = (rng.random(n) < 0.7).astype(np.float32)
                voice[:, F0_COL] = np.where(voice[:, VOICED_COL] > 0.5,
                                            pitch + e + rng.normal(0, 1, n), np.nan)
                face = np.zeros((30, FACE_DIM), np.float32)
                face[:, EXPRESSION] = rng.dirichlet(np.ones(7) + np.eye(7)[e % 7] * 5, 30)
                face[:, PRESENT_COL] = 1.0
                ends = speech_ends(3.0)
                speech = rng.normal(e * 0.2, 1, (len(ends), EMBED_DIM)).astype(np.float32)
                clips.append(ClipFeatures(Path(f"s{s}-{emotion}-{rep}"),
                                          _label(f"s{s}", emotion), voice, face, None,
                                          speech, ends))
    return clips


def test_a_tiny_fit_runs_end_to_end_and_calibrates() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    clips = _synthetic_corpus(5, rng)
    train = [c for c in clips if c.label.speaker in ("synth:s0", "synth:s1", "synth:s2")]
    val = [c for c in clips if c not in train]
    t0 = time.perf_counter()
    messages: list[str] = []
    net, info = fit(train, val, TrainOptions(max_epochs=2, patience=2, batch_size=16),
                    messages.append)
    assert time.perf_counter() - t0 < 30
    assert isinstance(net, AffectNet) and not net.training
    assert info["epochs_run"] == 2 and len(info["history"]) == 2 and len(messages) == 2
    assert info["best_epoch"] in (1, 2)
    for key in ("temperature", "face_temperature", "arousal_shift"):
        assert math.isfinite(info[key]), key
    assert 0.3 <= info["temperature"] <= 5.0
    assert info["face_temperature"] >= info["temperature"]  # face alone: never sharper
    assert float(net.temperature) == pytest.approx(info["temperature"])
    assert float(net.face_temperature) == pytest.approx(info["face_temperature"])
    assert float(net.arousal_shift) == pytest.approx(info["arousal_shift"])
    for h in info["history"]:
        assert math.isfinite(h["loss"]) and 0.0 <= h["uar"] <= 1.0
    # the population the net reads voices against is the training speakers' voiced rows
    voiced = np.concatenate([c.voice[c.voice[:, VOICED_COL] > 0.5] for c in train
                             if c.voice is not None])
    assert float(net.voice_mean[0]) == pytest.approx(float(voiced[:, 0].mean()), rel=1e-4)
    w = window_at(val[0], 3.0, reference_of(val[1:3]))
    from avatar_agent.affect.model import prepare

    with torch.inference_mode():
        out = net(**prepare([w]))
    assert all(torch.isfinite(o).all() for o in out)


def test_the_feature_cache_knows_a_clip_by_its_content(tmp_path: Path) -> None:
    from avatar_agent.training.dataset import _cache_key, _save_npz

    a = tmp_path / "a.wav"
    a.write_bytes(b"RIFF" + bytes(range(200)))
    copy = tmp_path / "sub" / "renamed.wav"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    os.utime(copy, ns=(1, 1))  # a re-synced corpus: same bytes, other name and time
    assert _cache_key(copy) == _cache_key(a)
    other = tmp_path / "b.wav"
    other.write_bytes(b"RIFF" + bytes(range(1, 201)))
    assert _cache_key(other) != _cache_key(a)
    assert _cache_key(a, "v-other") != _cache_key(a)
    # a cache file is written whole, and no temporary file is left beside it
    _save_npz(tmp_path / "cache" / "x.npz", {"rows": np.ones((3, 2), np.float32)})
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["x.npz"]


def test_members_train_from_their_own_seeds_alike_in_one_process_or_forked() -> None:
    from avatar_agent.affect.predictor import AffectEnsemble
    from avatar_agent.training.members import fit_members

    torch.set_num_threads(1)
    clips = _synthetic_corpus(4, np.random.default_rng(1))
    train = [c for c in clips if c.label.speaker in ("synth:s0", "synth:s1")]
    val = [c for c in clips if c not in train]
    opts = TrainOptions(max_epochs=1, patience=1, batch_size=16, members=2, seed=5)
    here, info = fit_members(train, val, opts, jobs=1)
    forked, info2 = fit_members(train, val, opts, jobs=2)
    assert isinstance(here, AffectEnsemble) and len(here.members) == 2
    assert len(info["members"]) == 2 and info["members"] == info2["members"]
    # each member's validation curve is kept, epoch by epoch, as its fold reports it
    assert [len(m["history"]) for m in info["members"]] == [1, 1]
    temps = [m["temperature"] for m in info["members"]]
    assert info["temperature"] == pytest.approx(float(np.mean(temps)))
    a, b = (dict(m.named_parameters()) for m in here.members)
    assert not torch.equal(a["emotion.weight"], b["emotion.weight"])  # seeds 5 and 6
    for m1, m2 in zip(here.members, forked.members, strict=True):
        for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
            assert torch.equal(v1, v2), k  # the same member wherever it trained
    # one member alone is the plain fit with the same seed
    solo, _ = fit_members(train, val, replace(opts, members=1, seed=6))
    for v1, v2 in zip(solo.members[0].state_dict().values(),
                      here.members[1].state_dict().values(), strict=True):
        assert torch.equal(v1, v2)


def test_anger_scaling_is_fitted_to_make_the_index_honest() -> None:
    from avatar_agent.training.calibration import fit_anger_scaling

    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 6000)
    y = rng.random(6000) < 1 / (1 + np.exp(-z))  # the log-odds z are honest
    honest = 100 / (1 + np.exp(-z))
    scale, shift = fit_anger_scaling(honest, y)
    assert scale == pytest.approx(1.0, abs=0.15) and shift == pytest.approx(0.0, abs=0.2)
    # an index twice as sure as it should be, and one read 1 too high in log-odds
    scale, shift = fit_anger_scaling(100 / (1 + np.exp(-(2 * z + 1))), y)
    assert scale == pytest.approx(0.5, abs=0.1) and shift == pytest.approx(-0.5, abs=0.25)
    # too few angry windows to tell: no change
    assert fit_anger_scaling(honest[:100], np.arange(100) < 10) == (1.0, 0.0)
