from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from avatar_agent.perception.audio import load_audio
from avatar_agent.perception.speech_embedding import (
    EMBED_DIM,
    WINDOW_SAMPLES,
    SampleRing,
    SpeechEncoder,
    fit_samples,
    read_ct2,
    whisper_filters,
)

RAVDESS = Path(__file__).resolve().parents[3] / "shared/data/speech_emotion/ravdess"


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _variable(name: str, arr: np.ndarray, dtype_id: int) -> bytes:
    dims = struct.pack("<" + "I" * arr.ndim, *arr.shape)
    data = arr.tobytes()
    return (_string(name) + struct.pack("<B", arr.ndim) + dims
            + struct.pack("<BI", dtype_id, len(data)) + data)


def test_read_ct2_keeps_the_prefixed_variables_with_shape_and_type() -> None:
    w = np.arange(6, dtype=np.float16).reshape(2, 3)
    heads = np.array(8, np.int16)
    skipped = np.ones(4, np.float32)
    blob = (struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<II", 3, 3)
            + _variable("decoder/x", skipped, 0) + _variable("encoder/w", w, 4)
            + _variable("encoder/num_heads", heads, 2))
    out = read_ct2(blob)
    assert sorted(out) == ["num_heads", "w"]
    assert out["w"].dtype == np.float16 and out["w"].shape == (2, 3)
    np.testing.assert_array_equal(out["w"], w)
    assert int(out["num_heads"]) == 8
    with pytest.raises(ValueError, match="format 5"):
        read_ct2(struct.pack("<I", 5) + blob[4:])


def test_whisper_filters_are_80_triangles_over_0_to_8_khz() -> None:
    fb = whisper_filters()
    assert fb.shape == (80, 201)
    assert (fb >= 0).all()
    peaks = fb.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # ordered by frequency
    assert peaks[0] < 5 and peaks[-1] > 180


def test_fit_samples_pads_at_the_start_and_keeps_the_last_two_seconds() -> None:
    short = np.ones(1000, np.float32)
    out = fit_samples(short)
    assert out.shape == (WINDOW_SAMPLES,)
    assert out[-1000:].sum() == 1000 and out[:-1000].sum() == 0
    long = np.arange(WINDOW_SAMPLES + 5, dtype=np.float32)
    assert fit_samples(long)[0] == 5.0


def test_sample_ring_holds_the_newest_two_seconds() -> None:
    ring = SampleRing()
    stream = np.arange(50_000, dtype=np.float32)
    for chunk in np.array_split(stream, 37):
        ring.push(chunk)
        assert ring.full == (ring.total >= WINDOW_SAMPLES)
    assert ring.total == stream.size
    np.testing.assert_array_equal(ring.samples(), stream[-WINDOW_SAMPLES:])


@pytest.fixture(scope="module")
def encoder() -> SpeechEncoder:
    return SpeechEncoder.load()


def _clip(name: str) -> np.ndarray:
    samples, _ = load_audio(RAVDESS / "Actor_03" / name)
    return fit_samples(samples)


def test_the_installed_encoder_embeds_real_speech_consistently(encoder: SpeechEncoder) -> None:
    angry = _clip("03-01-05-02-01-01-03.flac")
    neutral = _clip("03-01-01-01-01-01-03.flac")
    one = encoder.embed(angry)
    both = encoder.embed(np.stack([angry, neutral]))
    assert one.shape == (1, EMBED_DIM) and both.shape == (2, EMBED_DIM)
    assert np.isfinite(both).all()
    # int8 activations are scaled per input: a batch is read window by window, so a
    # window's embedding does not depend on its neighbours (training batches, calls do not)
    np.testing.assert_array_equal(both[0], one[0])
    assert not np.allclose(both[0], both[1], atol=1e-2)  # different speech, different embedding
    with pytest.raises(ValueError, match="32000"):
        encoder.embed(angry[:-1])


def test_missing_or_altered_weights_fail_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avatar_agent.perception import speech_embedding as se

    fakes = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    for f in fakes:
        f.write_bytes(b"not the weights")
    monkeypatch.setattr(se, "weight_files", lambda: fakes)
    with pytest.raises(ValueError, match="SHA-256"):
        SpeechEncoder.load()
    monkeypatch.undo()
    monkeypatch.setattr(se, "PACKAGES", (("no_such_weights_package", "x", "0"),))
    with pytest.raises(FileNotFoundError, match="no-such-weights-package is not installed"):
        se.weight_files()
