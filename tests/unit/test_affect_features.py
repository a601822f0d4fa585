from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.perception.face import (
    AU_NAMES,
    EXPRESSION_CLASSES,
    FACE_FEATURE_NAMES,
    FaceFeatures,
)
from avatar_agent.perception.features import (
    ENERGY_COL,
    EXPRESSION,
    EXPRESSION_COLUMNS,
    F0_COL,
    FACE_COLUMNS,
    FACE_DIM,
    FACE_HZ,
    GEOMETRY,
    N_MELS,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_HZ,
    VOICED_COL,
    LogMelStream,
    Moments,
    face_baseline,
    face_floor,
    face_moments,
    face_row,
    fit_length,
    log_mel,
    normalise,
    resample_face,
    silence_row,
    voice_baseline,
    voice_floor,
    voice_moments,
)


def _voiced_rows(rng: np.random.Generator, n: int, share: float = 0.7) -> np.ndarray:
    rows = rng.normal(5, 2, (n, VOICE_DIM)).astype(np.float32)
    rows[:, VOICED_COL] = (rng.random(n) < share).astype(np.float32)
    rows[rows[:, VOICED_COL] < 0.5, F0_COL] = np.nan  # unvoiced: no pitch
    return rows


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


def test_face_columns_are_geometry_then_seven_expressions_then_the_present_flag() -> None:
    assert len(EXPRESSION_COLUMNS) == 7 == len(EXPRESSION_CLASSES)
    assert len(FACE_FEATURE_NAMES) + 7 + 1 == FACE_DIM
    assert FACE_COLUMNS[GEOMETRY] == FACE_FEATURE_NAMES
    assert FACE_COLUMNS[EXPRESSION] == tuple(f"expr_{c}" for c in EXPRESSION_CLASSES)
    assert GEOMETRY.stop == EXPRESSION.start and EXPRESSION.stop == PRESENT_COL
    assert PRESENT_COL == FACE_DIM - 1 and FACE_COLUMNS[PRESENT_COL] == "present"


def test_face_row_fills_geometry_expression_and_the_flag() -> None:
    expr = (0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1)
    aus = {name: 0.01 * (i + 1) for i, name in enumerate(AU_NAMES)}
    feats = FaceFeatures(t=1.0, present=True, yaw=12.0, pitch=-3.0, roll=1.5,
                         eye_open=0.3, face_size=0.2, au=aus, expression=expr)
    row = face_row(feats)
    assert row.shape == (FACE_DIM,) and row.dtype == np.float32
    np.testing.assert_array_equal(row[GEOMETRY], feats.vector())
    assert row[0] == 12.0 and row[1] == -3.0
    np.testing.assert_allclose(row[EXPRESSION], expr, rtol=1e-6)
    assert row[PRESENT_COL] == 1.0
    # without the expression network the expression columns stay 0
    plain = face_row(FaceFeatures(t=1.0, present=True, yaw=12.0, au=aus))
    assert np.all(plain[EXPRESSION] == 0) and plain[PRESENT_COL] == 1.0
    np.testing.assert_array_equal(plain[GEOMETRY][:1], [12.0])
    # no face: an all-zero row, whatever the other fields hold
    absent = face_row(FaceFeatures(t=1.0, present=False, yaw=12.0, expression=expr))
    assert np.all(absent == 0)


def test_moments_baseline_is_the_mean_and_spread_of_flagged_finite_values() -> None:
    rows = _voiced_rows(np.random.default_rng(1), 500)
    m = voice_moments(rows)
    voiced = rows[rows[:, VOICED_COL] > 0.5]
    assert m.rows == len(voiced)
    base = m.baseline(voice_floor(), VOICE_HZ)
    assert base is not None
    assert base.seconds == pytest.approx(len(voiced) / VOICE_HZ)
    want_mean = voiced.mean(axis=0)
    want_std = np.maximum(voiced.std(axis=0), voice_floor())
    # the flag itself is read as is: mean 0, spread 1
    want_mean[VOICED_COL], want_std[VOICED_COL] = 0.0, 1.0
    np.testing.assert_allclose(base.mean, want_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(base.std, want_std, rtol=1e-4, atol=1e-4)
    # NaN is skipped per column, not per row
    with_nan = voiced.copy()
    with_nan[::3, F0_COL] = np.nan
    b2 = voice_moments(with_nan).baseline(voice_floor(), VOICE_HZ)
    assert b2 is not None and b2.seconds == base.seconds
    assert b2.mean[F0_COL] == pytest.approx(float(np.nanmean(with_nan[:, F0_COL])), abs=1e-4)
    np.testing.assert_allclose(b2.mean[:F0_COL], base.mean[:F0_COL], rtol=1e-5)


def test_moments_add_up_to_the_moments_of_all_rows() -> None:
    rng = np.random.default_rng(2)
    a, b = _voiced_rows(rng, 300), _voiced_rows(rng, 200) + 7.0
    b[:, VOICED_COL] = (rng.random(200) < 0.5).astype(np.float32)
    whole = voice_moments(np.concatenate([a, b]))
    summed = voice_moments(a) + voice_moments(b)
    assert summed.rows == whole.rows and summed.flag_col == VOICED_COL
    np.testing.assert_allclose(summed.n, whole.n)
    np.testing.assert_allclose(summed.sum, whole.sum, rtol=1e-9)
    np.testing.assert_allclose(summed.sq, whole.sq, rtol=1e-9)
    # adding in chunks with `add` gives the same
    chunked = Moments(VOICE_DIM, VOICED_COL)
    for part in np.array_split(np.concatenate([a, b]), 7):
        chunked.add(part)
    assert chunked.rows == whole.rows
    np.testing.assert_allclose(chunked.sum, whole.sum, rtol=1e-9)
    # __add__ makes a new object and leaves both operands as they were
    left = voice_moments(a)
    before = left.sum.copy()
    _ = left + voice_moments(b)
    np.testing.assert_array_equal(left.sum, before)


def test_moments_skip_unflagged_rows_and_give_no_baseline_without_any() -> None:
    rows = np.full((50, VOICE_DIM), 3.0, np.float32)
    rows[:, VOICED_COL] = 0.0
    m = voice_moments(rows)
    assert m.rows == 0 and np.all(m.n == 0)
    assert m.baseline(voice_floor(), VOICE_HZ) is None
    m.add(np.zeros((0, VOICE_DIM), np.float32))  # nothing to add is fine
    assert m.rows == 0


def test_a_constant_column_gets_the_spread_floor() -> None:
    rows = np.full((200, VOICE_DIM), -30.0, np.float32)
    rows[:, VOICED_COL] = 1.0
    base = voice_moments(rows).baseline(voice_floor(), VOICE_HZ)
    assert base is not None
    floor = voice_floor()
    np.testing.assert_allclose(base.std[:VOICED_COL], floor[:VOICED_COL])
    assert base.std[ENERGY_COL] == floor[ENERGY_COL] == 3.0
    assert base.mean[0] == -30.0 and base.seconds == 2.0


def test_floors_have_one_positive_value_per_column_and_are_copies() -> None:
    vf, ff = voice_floor(), face_floor()
    assert vf.shape == (VOICE_DIM,) and ff.shape == (FACE_DIM,)
    assert np.all(vf > 0) and np.all(ff > 0)
    assert np.all(ff[EXPRESSION] == pytest.approx(0.05))
    vf[:] = 1e9
    ff[:] = 1e9
    assert voice_floor()[0] == 3.0 and face_floor()[PRESENT_COL] == 1.0


def test_face_moments_read_frames_with_a_face_only() -> None:
    rows = np.zeros((40, FACE_DIM), np.float32)
    rows[:20, PRESENT_COL] = 1.0
    rows[:20, 0] = np.arange(20)  # yaw of the present frames
    rows[20:, 0] = 1000.0  # absent frames hold nothing real
    rows[:20, EXPRESSION.start] = 0.25
    m = face_moments(rows)
    assert m.rows == 20 and m.flag_col == PRESENT_COL
    base = m.baseline(face_floor(), FACE_HZ)
    assert base is not None and base.seconds == 2.0
    assert base.mean[0] == pytest.approx(9.5)
    assert base.std[0] == pytest.approx(np.arange(20).std(), rel=1e-5)
    assert base.mean[EXPRESSION.start] == pytest.approx(0.25)
    assert base.std[EXPRESSION.start] == pytest.approx(0.05)  # the floor
    assert base.mean[PRESENT_COL] == 0.0 and base.std[PRESENT_COL] == 1.0


def test_baselines_need_a_second_of_evidence() -> None:
    rows = _voiced_rows(np.random.default_rng(3), 500, share=1.0)
    assert voice_baseline(rows[:99]) is None  # 0.99 s of voiced speech
    b = voice_baseline(rows[:100])
    assert b is not None and b.seconds == 1.0
    full = voice_baseline(rows)
    assert full is not None and full.seconds == 5.0
    face = np.zeros((15, FACE_DIM), np.float32)
    face[:, PRESENT_COL] = 1.0
    assert face_baseline(face[:9]) is None  # 0.9 s at 10 Hz
    fb = face_baseline(face[:10])
    assert fb is not None and fb.seconds == 1.0
    fb15 = face_baseline(face, hz=15)
    assert fb15 is not None and fb15.seconds == 1.0  # the rate given counts


def test_normalise_reads_rows_against_the_person_and_blanks_absent_faces() -> None:
    rows = np.ones((4, FACE_DIM), np.float32) * 3
    rows[:, PRESENT_COL] = [1, 1, 0, 1]
    ref = np.ones((20, FACE_DIM), np.float32)
    ref[:, PRESENT_COL] = 1
    ref[::2, :PRESENT_COL] = 2  # mean 1.5, spread 0.5
    base = face_baseline(ref)
    assert base is not None
    z = normalise(rows, base, PRESENT_COL, blank_unflagged=True)
    assert np.all(z[2] == 0)
    au = len(FACE_FEATURE_NAMES) - len(AU_NAMES)  # an AU column: spread floor 0.01
    assert z[0, au] == pytest.approx((3 - 1.5) / 0.5) and z[0, PRESENT_COL] == 1
    assert z[0, 0] == pytest.approx((3 - 1.5) / 2.0)  # yaw: the spread floor of 2 degrees
    # far from the person: clipped at +-6
    far = rows.copy()
    far[:, 0] = 1e6
    assert normalise(far, base, PRESENT_COL)[0, 0] == 6.0


def test_resample_face_holds_recent_rows_only() -> None:
    times = np.array([0.0, 0.1, 0.2, 1.0])
    rows = np.arange(4 * FACE_DIM, dtype=np.float32).reshape(4, FACE_DIM)
    grid = resample_face(times, rows, t_end=1.0, n=11)  # 0.0 .. 1.0
    assert np.array_equal(grid[0], rows[0]) and np.array_equal(grid[2], rows[2])
    assert np.array_equal(grid[4], rows[2])  # 0.4 s: 0.2 s old, still held
    assert np.all(grid[6] == 0)  # 0.6 s: the last row is 0.4 s old, the face is absent
    assert np.array_equal(grid[10], rows[3])
    assert np.all(resample_face(np.zeros(0), rows[:0], 1.0) == 0)


def test_fit_length_pads_with_silence_at_the_start() -> None:
    rows = np.ones((5, VOICE_DIM), np.float32)
    out = fit_length(rows, 8, silence_row())
    assert out.shape == (8, VOICE_DIM)
    assert np.array_equal(out[3:], rows) and out[0, 0] == -100
    assert np.isnan(out[0, F0_COL]) and out[0, VOICED_COL] == 0 and out[0, ENERGY_COL] == -100
    long = np.arange(10 * VOICE_DIM, dtype=np.float32).reshape(10, VOICE_DIM)
    assert np.array_equal(fit_length(long, 4, silence_row()), long[6:])
