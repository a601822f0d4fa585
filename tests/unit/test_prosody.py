"""Prosody frames and window statistics on synthetic signals and real RAVDESS / GRID speech."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avatar_agent.perception.audio import load_audio
from avatar_agent.perception.prosody import (
    ProsodyFrame,
    ProsodyTracker,
    analyze_prosody,
    window_stats,
)

RATE = 16_000


def harmonic_complex(f0: float | np.ndarray, seconds: float, amp: float = 0.3) -> np.ndarray:
    """Five harmonics with 1/k amplitudes; ``f0`` may be a per-sample contour."""
    n = round(RATE * seconds)
    f = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / RATE
    return sum(amp / k * np.sin(k * phase) for k in range(1, 6))  # type: ignore[return-value]


def voiced_f0(frames: list[ProsodyFrame]) -> np.ndarray:
    return np.array([f.f0 for f in frames if f.voiced])


@pytest.mark.parametrize("f0", [110.0, 150.0, 240.0])
def test_f0_of_harmonic_complex_within_3_percent(f0: float) -> None:
    frames = analyze_prosody(harmonic_complex(f0, 1.5))
    assert len(frames) == 151
    assert [f.t for f in frames[:3]] == [0.0, 0.01, 0.02]
    f0s = voiced_f0(frames)
    assert f0s.size > 0.9 * len(frames)
    assert abs(np.median(f0s) / f0 - 1) < 0.03


def test_silence_is_unvoiced_at_energy_floor() -> None:
    frames = analyze_prosody(np.zeros(2 * RATE))
    assert not any(f.voiced or f.f0 for f in frames)
    assert all(f.energy_db == -100.0 for f in frames)
    stats = window_stats(frames, 2.0)
    assert math.isnan(stats.f0_median_hz) and stats.pause_ratio == 1.0


def test_energy_is_dbfs_rms() -> None:
    t = np.arange(RATE) / RATE
    frames = analyze_prosody(np.sin(2 * np.pi * 200 * t))
    inner = [f.energy_db for f in frames[5:-5]]
    assert np.allclose(inner, -3.01, atol=0.05)
    quiet = analyze_prosody(0.01 * np.sin(2 * np.pi * 200 * t))
    assert np.median([f.energy_db for f in quiet]) == pytest.approx(-43.01, abs=0.05)


def test_streaming_matches_offline_on_speech(grid_clip: Path) -> None:
    x, _ = load_audio(grid_clip)
    offline = analyze_prosody(x)
    tracker = ProsodyTracker()
    rng = np.random.default_rng(7)
    streamed: list[ProsodyFrame] = []
    pushed = 0
    while pushed < x.size:
        n = int(rng.integers(50, 1200))
        streamed += tracker.push(x[pushed : pushed + n])
        pushed = min(x.size, pushed + n)
        if streamed:  # frames keep up with the audio, within the stated latency
            assert pushed / RATE - streamed[-1].t <= tracker.latency_s + 1e-9
    assert tracker.latency_s <= 0.2
    streamed += tracker.flush()
    assert [f.t for f in streamed] == [f.t for f in offline]
    a = np.array([f.f0 for f in offline])
    b = np.array([f.f0 for f in streamed])
    assert np.mean((a > 0) == (b > 0)) > 0.97
    both = (a > 0) & (b > 0)
    assert np.median(np.abs(a[both] - b[both]) / a[both]) < 0.01
    ea = np.array([f.energy_db for f in offline])
    eb = np.array([f.energy_db for f in streamed])
    assert np.max(np.abs(ea - eb)) < 1e-6


def test_window_stats_on_grid_clip(grid_clip: Path) -> None:
    x, _ = load_audio(grid_clip)
    frames = analyze_prosody(x)
    for seconds in (0.5, 2.0):
        # A window ending mid-utterance (2.1 s into this clip), then the whole clip.
        upto = [f for f in frames if f.t <= 2.1]
        stats = window_stats(upto, seconds)
        assert stats.n_frames == round(seconds * 100)
        for name in ("f0_median_hz", "f0_median_st", "f0_range_st", "f0_slope_st_s"):
            assert math.isfinite(getattr(stats, name)), name
        assert math.isfinite(stats.energy_mean_db) and stats.energy_std_db >= 0
        assert 0.0 <= stats.pause_ratio <= 1.0
        assert 60 < stats.f0_median_hz < 400
        assert stats.f0_median_st == pytest.approx(12 * math.log2(stats.f0_median_hz / 100))
    whole = window_stats(frames, 3.0)
    assert 0.0 < whole.pause_ratio < 1.0
    assert 1.0 <= whole.speech_rate <= 8.0
    assert whole.speech_rate <= whole.articulation_rate <= 8.0


def test_speech_rate_counts_syllable_like_bursts() -> None:
    # 4 bursts per second (150 ms voiced, 100 ms silent) for 2 s: 8 nuclei.
    burst = harmonic_complex(160.0, 0.15) * np.hanning(round(0.15 * RATE))
    unit = np.concatenate([burst, np.zeros(round(0.1 * RATE))])
    x = np.concatenate([np.zeros(RATE // 10), np.tile(unit, 8), np.zeros(RATE // 10)])
    stats = window_stats(analyze_prosody(x), 2.2)
    assert stats.speech_rate * 2.2 == pytest.approx(8, abs=1)
    assert 0.3 < stats.pause_ratio < 0.8


def test_f0_slope_of_rising_glide() -> None:
    contour = np.linspace(120.0, 180.0, RATE)  # +7.02 semitones over 1 s
    stats = window_stats(analyze_prosody(harmonic_complex(contour, 1.0)), 0.8)
    assert stats.f0_slope_st_s == pytest.approx(12 * math.log2(1.5), rel=0.15)
    assert stats.f0_range_st == pytest.approx(0.8 * 7.02 * 0.8, rel=0.2)  # p90 - p10 of a ramp


def _clip_medians(path: Path) -> tuple[float, float]:
    x, _ = load_audio(path)
    voiced = [f for f in analyze_prosody(x) if f.voiced]
    return float(np.median([f.f0 for f in voiced])), float(np.median([f.energy_db for f in voiced]))


def test_ravdess_angry_higher_pitch_and_energy_than_neutral(data_dir: Path) -> None:
    root = data_dir / "speech_emotion" / "ravdess"
    rows = []
    for actor in range(1, 21):
        folder = root / f"Actor_{actor:02d}"
        per_class = {}
        for label, pattern in (("neutral", "03-01-01-01-*"), ("angry", "03-01-05-02-*")):
            clips = sorted(folder.glob(pattern + ".flac"))
            assert clips, f"no {label} clips in {folder}"
            medians = np.array([_clip_medians(c) for c in clips])
            per_class[label] = np.median(medians, axis=0)
        (f0_n, e_n), (f0_a, e_a) = per_class["neutral"], per_class["angry"]
        rows.append((actor, f0_n, f0_a, e_n, e_a, bool(f0_a > f0_n and e_a > e_n)))
    print("\nactor  F0 neutral  F0 angry  dB neutral  dB angry  both higher")
    for actor, f0_n, f0_a, e_n, e_a, ok in rows:
        print(f"{actor:5d}  {f0_n:10.1f}  {f0_a:8.1f}  {e_n:10.1f}  {e_a:8.1f}  {ok}")
    share = sum(r[-1] for r in rows) / len(rows)
    print(f"share of actors with angry > neutral in both: {share:.0%}")
    assert share >= 0.8


def test_nuclei_peaks_match_scipy_find_peaks() -> None:
    from scipy import signal

    from avatar_agent.perception.prosody import _nuclei_peaks

    rng = np.random.default_rng(0)
    for _ in range(500):
        x = np.convolve(rng.normal(0, 5, rng.integers(3, 300)), np.ones(5) / 5, mode="same")
        expected, _ = signal.find_peaks(x, height=-5.0, prominence=2.0, distance=8)
        np.testing.assert_array_equal(_nuclei_peaks(x, -5.0, 2.0, 8), expected)
