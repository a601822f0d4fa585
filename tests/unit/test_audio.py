"""48 kHz call audio → 16 kHz mono, and decoding files, on synthetic tones and real clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from avatar_agent.perception.audio import AudioFileError, Downsampler, load_audio, to_mono

IN_RATE = 48_000
DELAY = 32  # output samples of FIR group delay: (193 - 1) / 2 / 3


def stereo_tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    """Packed s16 stereo, shape (1, 2n), as PyAV's AudioFrame.to_ndarray() gives it."""
    t = np.arange(round(IN_RATE * seconds)) / IN_RATE
    mono = np.round(amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return np.stack([mono, mono], axis=1).reshape(1, -1)


def push_chunked(ds: Downsampler, packed: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    i = 0
    n = packed.shape[1] // 2
    while i < n:
        k = int(rng.integers(1, 1500))
        out.append(ds.push(packed[:, 2 * i : 2 * (i + k)]))
        i += k
    return np.concatenate(out)


def test_1khz_stereo_chunked_equals_one_shot_and_is_clean() -> None:
    packed = stereo_tone(1000.0, 1.0)
    one_shot = Downsampler(IN_RATE, channels=2).push(packed)
    chunked = push_chunked(Downsampler(IN_RATE, channels=2), packed, seed=3)
    assert one_shot.dtype == np.float32 and chunked.dtype == np.float32
    assert chunked.shape == one_shot.shape == (16_000,)
    # No seams: chunking changes nothing beyond float rounding.
    assert np.max(np.abs(chunked - one_shot)) < 1e-6
    # And the result is the ideal 1 kHz sine, delayed by the filter's group delay.
    t = (np.arange(chunked.size) - DELAY) / 16_000
    ideal = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    settled = slice(200, None)
    assert np.max(np.abs(chunked[settled] - ideal[settled])) < 2e-3
    # Sample-to-sample steps never exceed what a 1 kHz sine allows (no clicks).
    assert np.max(np.abs(np.diff(chunked[settled]))) < 0.5 * 2 * np.pi * 1000 / 16_000 * 1.01


def test_planar_and_packed_stereo_agree() -> None:
    packed = stereo_tone(440.0, 0.2)
    planar = packed.reshape(-1, 2).T
    assert np.array_equal(to_mono(packed, 2), to_mono(planar, 2))
    a = Downsampler(IN_RATE, channels=2).push(packed)
    b = Downsampler(IN_RATE, channels=2).push(planar)
    assert np.array_equal(a, b)
    # Planar input describes itself, whatever channel count the converter was given.
    assert np.array_equal(Downsampler(IN_RATE, channels=1).push(planar), b)


def test_10khz_tone_is_removed_not_aliased() -> None:
    packed = stereo_tone(10_000.0, 0.5)
    out = Downsampler(IN_RATE, channels=2).push(packed)[200:]
    in_rms = 0.5 / np.sqrt(2)
    assert 20 * np.log10(np.sqrt(np.mean(out**2)) / in_rms) < -60
    # Plain decimation would fold it to 6 kHz at full level: the filter is what helps.
    naive = to_mono(packed, 2)[::3]
    assert np.sqrt(np.mean(naive**2)) > 0.3


def test_push_frame_reads_pyav_s16_stereo() -> None:
    packed = stereo_tone(1000.0, 0.1)
    per_frame = 960  # 20 ms at 48 kHz, as WebRTC delivers
    ds = Downsampler(IN_RATE, channels=2)
    out = []
    for i in range(0, packed.shape[1] // 2, per_frame):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(packed[:, 2 * i : 2 * (i + per_frame)]),
            format="s16",
            layout="stereo",
        )
        frame.sample_rate = IN_RATE
        out.append(ds.push_frame(frame))
    streamed = np.concatenate(out)
    assert np.max(np.abs(streamed - Downsampler(IN_RATE, channels=2).push(packed))) < 1e-6
    # Frames describe their own layout: a mono-configured converter still mixes them.
    mono_cfg = Downsampler(IN_RATE, channels=1)
    assert np.array_equal(mono_cfg.push_frame(frame), Downsampler(IN_RATE, 2).push_frame(frame))
    frame.sample_rate = 44_100
    with pytest.raises(ValueError, match="44100"):
        Downsampler(IN_RATE, channels=2).push_frame(frame)


def test_load_ravdess_flac(data_dir: Path) -> None:
    path = data_dir / "speech_emotion/ravdess/Actor_01/03-01-05-02-01-01-01.flac"
    samples, duration = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert duration == pytest.approx(2.389, abs=0.01)
    assert samples.size == pytest.approx(duration * 16_000, abs=1)
    assert 0.05 < np.max(np.abs(samples)) <= 1.0


def test_load_grid_mpg_resamples_to_16k_mono(data_dir: Path) -> None:
    path = sorted((data_dir / "talking_face/grid").glob("*.mpg"))[0]
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        src_rate, src_channels = stream.rate, stream.channels
        expected = float(stream.duration * stream.time_base)
    assert (src_rate, src_channels) != (16_000, 1)  # the file really needs converting
    samples, duration = load_audio(path)
    assert samples.ndim == 1 and samples.dtype == np.float32
    assert duration == pytest.approx(expected, abs=0.03)
    assert 2.9 < duration < 3.1


def _assert_one_line_error(path: Path, fragment: str) -> None:
    with pytest.raises(AudioFileError) as info:
        load_audio(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    assert fragment in message


def test_bad_files_raise_one_line_audio_file_error(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _assert_one_line_error(empty, "empty")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    _assert_one_line_error(text, "cannot decode")
    _assert_one_line_error(tmp_path / "missing.flac", "no such file")
    silent_video = sorted((data_dir / "face_video/mead").glob("*.mp4"))[0]
    _assert_one_line_error(silent_video, "no audio")
    assert issubclass(AudioFileError, ValueError)
