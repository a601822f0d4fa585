from __future__ import annotations

import numpy as np

from avatar_agent.affect.features import (
    FACE_DIM,
    N_MELS,
    PRESENT_COL,
    VOICE_DIM,
    VOICED_COL,
    LogMelStream,
    RunningBaseline,
    fit_length,
    log_mel,
    normalise,
    resample_face,
    silence_row,
    voice_baseline,
)


def test_log_mel_counts_frames_like_prosody_and_finds_a_tone_band() -> None:
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = log_mel(x)
    assert mel.shape == (16000 // 160 + 1, N_MELS)
    band = int(np.argmax(mel[50]))
    assert mel[50, band] > mel[50].mean() + 20  # energy sits in one band
    assert np.all(log_mel(np.zeros(1600, np.float32)) < -90)


def test_streamed_log_mel_equals_the_whole_recording_in_any_chunking() -> None:
    x = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
    whole = log_mel(x)
    stream, rows, done, pos = LogMelStream(), [], 0, 0
    for n in (333, 1000, 20, 5000, 7000, 9000, 9647):
        stream.push(x[pos : pos + n])
        pos += n
        ready = (pos - 200) // 160 + 1 - done
        if ready > 0:
            rows.append(stream.rows(done, ready))
            done += ready
    rows.append(stream.rows(done, len(x) // 160 + 1 - done))
    np.testing.assert_allclose(np.concatenate(rows), whole, atol=1e-4)


def test_running_baseline_matches_the_batch_one_on_voiced_rows() -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(5, 2, (500, VOICE_DIM)).astype(np.float32)
    rows[:, VOICED_COL] = (rng.random(500) > 0.3).astype(np.float32)
    rows[rows[:, VOICED_COL] < 0.5, N_MELS] = np.nan  # unvoiced: no pitch
    run = RunningBaseline.for_voice()
    for chunk in np.array_split(rows, 7):
        run.update(chunk)
    a, b = run.baseline(), voice_baseline(rows)
    assert a is not None and b is not None
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-3)
    np.testing.assert_allclose(a.std, b.std, atol=1e-3)
    assert voice_baseline(rows[:50]) is None  # under a second of voiced speech


def test_running_baseline_stops_learning_after_max_seconds() -> None:
    run = RunningBaseline.for_voice(max_s=1.0)
    calm = np.zeros((100, VOICE_DIM), np.float32)
    calm[:, VOICED_COL] = 1
    run.update(calm)
    loud = calm + 30
    loud[:, VOICED_COL] = 1
    run.update(loud)
    base = run.baseline()
    assert base is not None and abs(float(base.mean[0])) < 1e-6


def test_normalise_reads_rows_against_the_person_and_blanks_absent_faces() -> None:
    rows = np.ones((4, FACE_DIM), np.float32) * 3
    rows[:, PRESENT_COL] = [1, 1, 0, 1]
    run = RunningBaseline.for_face(hz=10)
    ref = np.ones((20, FACE_DIM), np.float32)
    ref[:, PRESENT_COL] = 1
    ref[::2, :PRESENT_COL] = 2  # mean 1.5, spread 0.5
    run.update(ref)
    base = run.baseline()
    assert base is not None
    z = normalise(rows, base, PRESENT_COL, blank_unflagged=True)
    assert np.all(z[2] == 0)
    assert z[0, 0] > 0 and z[0, PRESENT_COL] == 1


def test_resample_face_holds_recent_rows_only() -> None:
    times = np.array([0.0, 0.1, 0.2, 1.0])
    rows = np.arange(4 * FACE_DIM, dtype=np.float32).reshape(4, FACE_DIM)
    grid = resample_face(times, rows, t_end=1.0, n=11)  # 0.0 .. 1.0
    assert np.array_equal(grid[0], rows[0]) and np.array_equal(grid[2], rows[2])
    assert np.array_equal(grid[4], rows[2])  # 0.4 s: 0.2 s old, still held
    assert np.all(grid[6] == 0)  # 0.6 s: the last row is 0.4 s old, the face is absent
    assert np.array_equal(grid[10], rows[3])


def test_fit_length_pads_with_silence_at_the_start() -> None:
    rows = np.ones((5, VOICE_DIM), np.float32)
    out = fit_length(rows, 8, silence_row())
    assert out.shape == (8, VOICE_DIM)
    assert np.array_equal(out[3:], rows) and out[0, 0] == -100
