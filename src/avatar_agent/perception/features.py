"""What the affect model sees: per-frame voice and face rows, a speaker baseline, windows.

Pure numpy, no I/O and no clock, so a live call and `train`/`evaluate` build exactly
the same inputs:

* voice rows, one per 10 ms prosody frame (frame ``i`` centred on ``t = i * 0.01`` s):
  32 log-mel bands of the 25 ms window around ``t`` (dB), F0 in semitones re 100 Hz
  (:func:`~avatar_agent.perception.prosody.hz_to_semitones`, NaN when unvoiced), the
  voicing flag and the RMS energy in dB;
* face rows at 10 Hz: the 28 continuous face features of
  :data:`avatar_agent.perception.face.FACE_FEATURE_NAMES`, the 7 class probabilities
  of the face-expression network and a face-present flag;
* a :class:`SpeakerBaseline` per modality: mean and spread of the rows while the
  customer speaks (voiced frames) or shows their face. The model reads the rows both
  against the population and, once a calm reference of the caller exists
  (:mod:`avatar_agent.affect.reference`), against it, so a naturally high or loud
  voice is not "aroused" for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from avatar_agent.perception.face import EXPRESSION_CLASSES, FACE_FEATURE_NAMES, FaceFeatures
from avatar_agent.perception.prosody import ProsodyFrame, hz_to_semitones

F32 = npt.NDArray[np.float32]

RATE = 16_000
HOP = 160  # 10 ms
WIN = 400  # 25 ms, centred on the frame time like the prosody energy window
N_FFT = 512
N_MELS = 32
MEL_FMIN, MEL_FMAX = 60.0, 7_600.0

VOICE_HZ = 100
FACE_HZ = 10
WINDOW_S = 2.0
VOICE_FRAMES = round(WINDOW_S * VOICE_HZ)  # 200
FACE_FRAMES = round(WINDOW_S * FACE_HZ)  # 20

VOICE_COLUMNS: tuple[str, ...] = (
    *(f"mel{i:02d}" for i in range(N_MELS)), "f0_st", "voiced", "energy_db"
)
# The face-expression network's class probabilities (perception/face_expression.py):
# what a network trained on many faces reads, where geometry alone knows few people.
EXPRESSION_COLUMNS: tuple[str, ...] = tuple(f"expr_{c}" for c in EXPRESSION_CLASSES)
FACE_COLUMNS: tuple[str, ...] = (*FACE_FEATURE_NAMES, *EXPRESSION_COLUMNS, "present")
VOICE_DIM = len(VOICE_COLUMNS)
FACE_DIM = len(FACE_COLUMNS)
F0_COL, VOICED_COL, ENERGY_COL = N_MELS, N_MELS + 1, N_MELS + 2
PRESENT_COL = FACE_DIM - 1
GEOMETRY = slice(0, len(FACE_FEATURE_NAMES))
EXPRESSION = slice(len(FACE_FEATURE_NAMES), len(FACE_FEATURE_NAMES) + len(EXPRESSION_CLASSES))

SILENCE_DB = -100.0
MIN_BASELINE_VOICED_S = 1.0  # less voiced speech than this gives no usable voice baseline
MIN_BASELINE_FACE_S = 1.0


def _mel_filterbank() -> F32:
    """Triangular filters on the HTK mel scale, each normalised to unit area (Slaney)."""

    def mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(2595.0 * np.log10(1.0 + f / 700.0), np.float64)

    def hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(700.0 * (10.0 ** (m / 2595.0) - 1.0), np.float64)

    edges = hz(np.linspace(mel(np.array(MEL_FMIN)), mel(np.array(MEL_FMAX)), N_MELS + 2))
    freqs = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))
    return np.asarray(fb, np.float32)


_FILTERS = _mel_filterbank()
_WINDOW = np.hanning(WIN).astype(np.float32)


def log_mel(samples: npt.ArrayLike, first: int = 0, count: int | None = None) -> F32:
    """Log-mel rows (dB) for frames ``first .. first+count-1`` of a 16 kHz recording.

    Frame ``i`` covers samples ``[i*160 - 200, i*160 + 200)``; samples outside the
    recording count as silence. Without ``count`` it gives as many frames as
    :func:`avatar_agent.perception.prosody.analyze_prosody`: ``len // 160 + 1``.
    """
    x = np.asarray(samples, np.float32).reshape(-1)
    n = x.size // HOP + 1 - first if count is None else count
    if n <= 0:
        return np.zeros((0, N_MELS), np.float32)
    return _mel_rows(_segment(x, 0, first, n), n)


def _segment(x: F32, x_start: int, first: int, n: int) -> F32:
    """The samples frames first..first+n-1 need, zeros outside what ``x`` holds
    (``x[0]`` is stream sample ``x_start``)."""
    lo = first * HOP - WIN // 2
    hi = (first + n - 1) * HOP + WIN // 2
    seg = np.zeros(hi - lo, np.float32)
    a, b = max(lo, x_start), min(hi, x_start + x.size)
    if b > a:
        seg[a - lo : b - lo] = x[a - x_start : b - x_start]
    return seg


def _mel_rows(seg: F32, n: int) -> F32:
    frames = np.lib.stride_tricks.sliding_window_view(seg, WIN)[::HOP][:n] * _WINDOW
    power = np.abs(np.fft.rfft(frames, N_FFT, axis=1)) ** 2
    mel = power.astype(np.float32) @ _FILTERS.T
    return np.asarray(10.0 * np.log10(np.maximum(mel, 1e-10)), np.float32)


def voice_rows(mel: F32, frames: Sequence[ProsodyFrame]) -> F32:
    """Join log-mel rows and prosody frames of the same indices into voice rows."""
    n = min(len(mel), len(frames))
    rows = np.empty((n, VOICE_DIM), np.float32)
    rows[:, :N_MELS] = mel[:n]
    f0 = np.array([fr.f0 if fr.voiced else 0.0 for fr in frames[:n]], np.float64)
    with np.errstate(divide="ignore"):
        rows[:, F0_COL] = np.where(f0 > 0, hz_to_semitones(f0), np.nan)
    rows[:, VOICED_COL] = [float(fr.voiced) for fr in frames[:n]]
    rows[:, ENERGY_COL] = [fr.energy_db for fr in frames[:n]]
    return rows


def face_row(feats: FaceFeatures) -> F32:
    row = np.zeros(FACE_DIM, np.float32)
    if feats.present:
        row[GEOMETRY] = feats.vector()
        if feats.expression is not None:
            row[EXPRESSION] = feats.expression
        row[PRESENT_COL] = 1.0
    return row


def resample_face(
    times: npt.ArrayLike, rows: F32, t_end: float, n: int = FACE_FRAMES, hold_s: float = 0.3
) -> F32:
    """Face rows on the 10 Hz grid ending at ``t_end``: the latest row at or before each
    grid time, if it is at most ``hold_s`` old, else an absent face."""
    t = np.asarray(times, np.float64)
    grid = t_end - (n - 1 - np.arange(n)) / FACE_HZ
    out = np.zeros((n, FACE_DIM), np.float32)
    if t.size == 0:
        return out
    idx = np.searchsorted(t, grid + 1e-6, side="right") - 1
    ok = (idx >= 0) & (grid - t[np.clip(idx, 0, None)] <= hold_s)
    out[ok] = rows[idx[ok]]
    return out


@dataclass(frozen=True)
class SpeakerBaseline:
    """Per-column mean and spread of one person's rows; ``seconds`` of data behind it."""

    mean: F32
    std: F32
    seconds: float


# Spread floors: a column that hardly moves for this person must not blow up.
_VOICE_STD_FLOOR = np.array([3.0] * N_MELS + [1.0, 1.0, 3.0], np.float32)
_FACE_STD_FLOOR = np.array(
    [2.0, 2.0, 2.0, 0.05, 0.05, 0.02, 0.01] + [0.01] * (len(FACE_FEATURE_NAMES) - 7)
    + [0.05] * len(EXPRESSION_CLASSES) + [1.0],
    np.float32,
)


def voice_floor() -> F32:
    return _VOICE_STD_FLOOR.copy()


def face_floor() -> F32:
    return _FACE_STD_FLOOR.copy()


class Moments:
    """Per-column count, sum and sum of squares of the flagged rows (voiced frames, or
    frames with a face), NaN skipped: a baseline's sufficient statistics, which add up
    across clips, so a reference from any set of clips costs one sum."""

    def __init__(self, dim: int, flag_col: int) -> None:
        self.flag_col = flag_col
        self.n = np.zeros(dim, np.float64)
        self.sum = np.zeros(dim, np.float64)
        self.sq = np.zeros(dim, np.float64)
        self.rows = 0

    def add(self, rows: F32) -> None:
        keep = rows[rows[:, self.flag_col] > 0.5]
        if not len(keep):
            return
        finite = np.isfinite(keep)
        vals = np.where(finite, keep, 0.0).astype(np.float64)
        self.n += finite.sum(axis=0)
        self.sum += vals.sum(axis=0)
        self.sq += (vals**2).sum(axis=0)
        self.rows += len(keep)

    def __add__(self, other: Moments) -> Moments:
        out = Moments(self.n.size, self.flag_col)
        out.n, out.sum, out.sq = self.n + other.n, self.sum + other.sum, self.sq + other.sq
        out.rows = self.rows + other.rows
        return out

    def baseline(self, floor: F32, hz: float) -> SpeakerBaseline | None:
        if self.rows == 0:
            return None
        n = np.maximum(self.n, 1.0)
        mean = self.sum / n
        std = np.maximum(np.sqrt(np.maximum(self.sq / n - mean**2, 0.0)), floor)
        mean[self.flag_col], std[self.flag_col] = 0.0, 1.0  # the flag is read as is
        return SpeakerBaseline(mean.astype(np.float32), std.astype(np.float32), self.rows / hz)


def voice_moments(rows: F32) -> Moments:
    m = Moments(VOICE_DIM, VOICED_COL)
    m.add(rows)
    return m


def face_moments(rows: F32) -> Moments:
    m = Moments(FACE_DIM, PRESENT_COL)
    m.add(rows)
    return m


def voice_baseline(rows: F32) -> SpeakerBaseline | None:
    """Baseline from all voiced rows; None with less than a second of voiced speech."""
    b = voice_moments(rows).baseline(_VOICE_STD_FLOOR, VOICE_HZ)
    return b if b is not None and b.seconds >= MIN_BASELINE_VOICED_S else None


def face_baseline(rows: F32, hz: float = FACE_HZ) -> SpeakerBaseline | None:
    b = face_moments(rows).baseline(_FACE_STD_FLOOR, hz)
    return b if b is not None and b.seconds >= MIN_BASELINE_FACE_S else None


def normalise(
    rows: F32, base: SpeakerBaseline, flag_col: int, *, blank_unflagged: bool = False,
    clip: float = 6.0,
) -> F32:
    """Rows as z-scores against the person's baseline; NaN (unvoiced F0) reads as 0.

    ``blank_unflagged`` zeroes rows whose flag is off: a frame without a face has
    nothing to compare, whereas an unvoiced frame still has a spectrum.
    """
    z = (rows - base.mean) / base.std
    z = np.nan_to_num(z, nan=0.0, posinf=clip, neginf=-clip)
    z = np.clip(z, -clip, clip)
    z[:, flag_col] = rows[:, flag_col]
    if blank_unflagged:
        z[rows[:, flag_col] < 0.5] = 0.0
    return z.astype(np.float32)


def fit_length(rows: F32, n: int, fill: F32) -> F32:
    """The last ``n`` rows; a shorter sequence is padded at the start with ``fill``."""
    if len(rows) >= n:
        return rows[len(rows) - n :]
    pad = np.repeat(fill[None, :], n - len(rows), axis=0)
    out: F32 = np.concatenate([pad, rows]).astype(np.float32)
    return out


def silence_row() -> F32:
    row = np.full(VOICE_DIM, SILENCE_DB, np.float32)
    row[F0_COL], row[VOICED_COL] = np.nan, 0.0
    return row



class LogMelStream:
    """Log-mel rows of a live 16 kHz stream, for the frame indices prosody produced.

    Prosody frames come out a little after their audio (see ProsodyTracker), so the
    samples are kept until the frames that need them have been asked for. The rows are
    the ones :func:`log_mel` gives for the whole recording.
    """

    def __init__(self) -> None:
        self._buf = np.zeros(0, np.float32)
        self._start = 0  # stream index of _buf[0]

    def push(self, pcm: npt.ArrayLike) -> None:
        self._buf = np.concatenate([self._buf, np.asarray(pcm, np.float32).reshape(-1)])

    def rows(self, first: int, count: int) -> F32:
        """Rows for frames first .. first+count-1; samples no later frame needs are dropped."""
        if count <= 0:
            return np.zeros((0, N_MELS), np.float32)
        out = _mel_rows(_segment(self._buf, self._start, first, count), count)
        keep_from = min(self._start + self._buf.size,
                        max(self._start, (first + count) * HOP - WIN // 2))
        self._buf = self._buf[keep_from - self._start :]
        self._start = keep_from
        return out
