"""Prosody of 16 kHz mono speech: F0, voicing and energy every 10 ms, and window statistics.

Frame ``i`` describes the audio centred on ``t = i * 0.01`` s:

* ``f0``: fundamental frequency in Hz from WORLD's DIO estimator refined by
  StoneMask (pyworld), 0.0 when unvoiced.
* ``voiced``: ``f0 > 0`` and ``energy_db >= min_voiced_db``; the energy gate stops
  DIO from reporting pitch in faint background noise.
* ``energy_db``: RMS level of the 25 ms window ``[t - 12.5 ms, t + 12.5 ms)`` in
  dBFS, ``20 * log10(max(rms, 1e-5))``, so digital silence reads -100 dB and a
  full-scale sine -3.01 dB.

:class:`ProsodyTracker` computes the same frames from a live stream; frames come out
at most ``block_s + lookahead_s`` (180 ms) after their audio. The module does no I/O
and reads no clock.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

with warnings.catch_warnings():
    # pyworld's __init__ imports pkg_resources only to read its own version.
    warnings.simplefilter("ignore", UserWarning)
    import pyworld

RATE = 16_000
HOP_S = 0.01
ENERGY_WIN_S = 0.025
ENERGY_FLOOR_DB = -100.0
F0_FLOOR_HZ = 71.0
F0_CEIL_HZ = 800.0
F0_REF_HZ = 100.0

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ProsodyFrame:
    """One 10 ms analysis frame (see the module docstring for the definitions)."""

    t: float
    f0: float
    voiced: bool
    energy_db: float


@dataclass(frozen=True, slots=True)
class ProsodyStats:
    """Summary of the frames in one window; a value is NaN when the window cannot define it.

    F0 values are over voiced frames: ``f0_median_st = 12 * log2(f0_median_hz / 100)``,
    ``f0_range_st`` the 90th minus the 10th percentile in semitones, ``f0_slope_st_s``
    the least-squares slope of semitones against time (needs 3 voiced frames).
    Energy mean and standard deviation are over voiced frames, or over active frames
    when none is voiced. A frame is active (speech-like) when its energy is at least
    ``max(-55 dBFS, p95 - 30 dB)``, p95 being the 95th percentile of the energy of all
    frames handed to :func:`window_stats`, so a longer history gives a steadier
    reference. ``pause_ratio`` is the share of frames in the window that are not
    active. ``speech_rate`` counts syllable nuclei per second of window and
    ``articulation_rate`` per second of active frames (see :func:`syllable_nuclei`).
    """

    t_end: float
    seconds: float
    n_frames: int
    voiced_ratio: float
    f0_median_hz: float
    f0_median_st: float
    f0_range_st: float
    f0_slope_st_s: float
    energy_mean_db: float
    energy_std_db: float
    speech_rate: float
    articulation_rate: float
    pause_ratio: float


def hz_to_semitones(f0_hz: Float64Array | float) -> Float64Array:
    """Semitones relative to 100 Hz: ``12 * log2(f0 / 100)``."""
    return np.asarray(12.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / F0_REF_HZ))


def frame_energy_db(x: Float64Array, n_frames: int, rate: int = RATE) -> Float64Array:
    """RMS level in dBFS of the 25 ms window centred on each 10 ms frame of ``x``.

    Samples outside ``x`` count as zeros, as they do for DIO.
    """
    hop = round(rate * HOP_S)
    half = round(rate * ENERGY_WIN_S / 2)
    padded = np.zeros(max(x.size, (n_frames - 1) * hop) + 2 * half, dtype=np.float64)
    padded[half : half + x.size] = x
    csum = np.concatenate(([0.0], np.cumsum(padded * padded)))
    starts = np.arange(n_frames) * hop
    power = (csum[starts + 2 * half] - csum[starts]) / (2 * half)
    rms = np.sqrt(np.maximum(power, 0.0))
    db: Float64Array = 20.0 * np.log10(np.maximum(rms, 10.0 ** (ENERGY_FLOOR_DB / 20.0)))
    return db


def _f0(x: Float64Array, rate: int, speed: int) -> Float64Array:
    # Decimating by `speed` inside DIO halves its cost; StoneMask then refines each
    # estimate on the full-rate signal, so accuracy is kept.
    f0, times = pyworld.dio(
        x, rate, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ, frame_period=HOP_S * 1000, speed=speed
    )
    refined: Float64Array = pyworld.stonemask(x, f0, times, rate)
    # StoneMask can push an estimate outside the search range on near-silent frames.
    refined[(refined < F0_FLOOR_HZ * 0.9) | (refined > F0_CEIL_HZ * 1.1)] = 0.0
    return refined


def _frames(
    f0: Float64Array, energy: Float64Array, first_index: int, min_voiced_db: float
) -> list[ProsodyFrame]:
    voiced = (f0 > 0) & (energy >= min_voiced_db)
    return [
        ProsodyFrame(
            t=round((first_index + k) * HOP_S, 6),
            f0=float(f0[k]) if voiced[k] else 0.0,
            voiced=bool(voiced[k]),
            energy_db=float(energy[k]),
        )
        for k in range(f0.size)
    ]


def analyze_prosody(
    samples: npt.ArrayLike,
    rate: int = RATE,
    *,
    min_voiced_db: float = -65.0,
    speed: int = 2,
) -> list[ProsodyFrame]:
    """Frames for a whole recording: ``floor(len / hop) + 1`` frames from ``t = 0``."""
    x = np.ascontiguousarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return []
    f0 = _f0(x, rate, speed)
    return _frames(f0, frame_energy_db(x, f0.size, rate), 0, min_voiced_db)


class ProsodyTracker:
    """Streaming prosody: ``push`` audio of any length, get the frames it completes.

    Analysis runs once at least ``block_s`` of new frames have ``lookahead_s`` of
    audio after them, on those frames plus ``context_s`` of audio before them, so a
    frame sees almost the same neighbourhood as in :func:`analyze_prosody` and the
    contours join without seams. ``flush`` ends the stream and returns the rest, which
    makes the frame count equal to the offline one.
    """

    def __init__(
        self,
        rate: int = RATE,
        *,
        block_s: float = 0.1,
        lookahead_s: float = 0.08,
        context_s: float = 0.2,
        min_voiced_db: float = -65.0,
        speed: int = 2,
    ) -> None:
        self.rate = rate
        self.hop = round(rate * HOP_S)
        self.block_frames = max(1, round(block_s / HOP_S))
        self.lookahead = round(lookahead_s * rate)
        self.context_frames = math.ceil(context_s / HOP_S)
        self.min_voiced_db = min_voiced_db
        self.speed = speed
        self.reset()

    @property
    def latency_s(self) -> float:
        """Longest wait, in seconds of audio, between a frame's centre and its output."""
        return (self.block_frames * self.hop + self.lookahead) / self.rate

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.float64)
        self._buf_start = 0  # stream sample index of self._buf[0]
        self._total = 0  # samples received
        self._next = 0  # index of the next frame to emit

    def push(self, samples: npt.ArrayLike) -> list[ProsodyFrame]:
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        self._buf = np.concatenate((self._buf, x))
        self._total += x.size
        ready = (self._total - self.lookahead) // self.hop + 1  # frames 0..ready-1 are final
        if ready - self._next < self.block_frames:
            return []
        return self._emit(ready, end_of_stream=False)

    def flush(self) -> list[ProsodyFrame]:
        """Emit every remaining frame, treating the audio so far as the whole stream."""
        if self._total == 0:
            return []
        frames = self._emit(self._total // self.hop + 1, end_of_stream=True)
        self.reset()
        return frames

    def _emit(self, stop: int, *, end_of_stream: bool) -> list[ProsodyFrame]:
        first = max(0, self._next - self.context_frames)
        start = first * self.hop
        seg = np.ascontiguousarray(self._buf[start - self._buf_start :])
        f0 = _f0(seg, self.rate, self.speed)
        n = stop - first
        if f0.size < n:  # DIO's count is floor(len / hop) + 1, so never short; be safe
            f0 = np.concatenate((f0, np.zeros(n - f0.size)))
        f0 = f0[self._next - first : n]
        energy = frame_energy_db(seg, n, self.rate)[self._next - first :]
        frames = _frames(f0, energy, self._next, self.min_voiced_db)
        self._next = stop
        if not end_of_stream:
            keep_from = max(0, (self._next - self.context_frames) * self.hop)
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return frames


def _nuclei_peaks(
    x: Float64Array, height: float, min_prominence: float, min_distance: int
) -> npt.NDArray[np.intp]:
    """Indices of local maxima >= ``height`` with the given prominence and spacing.

    Prominence is the peak's height above the higher of the two lowest points between
    it and the nearest higher sample on each side (or the contour's end). Spacing is
    enforced first, greedily from the tallest peak down, so a weaker neighbour gives way.
    """
    inner = x[1:-1]
    cand = np.flatnonzero((inner > x[:-2]) & (inner >= x[2:]) & (inner >= height)) + 1
    spaced: list[int] = []
    for i in sorted(cand.tolist(), key=lambda k: -x[k]):
        if all(abs(i - j) >= min_distance for j in spaced):
            spaced.append(i)
    keep: list[int] = []
    for i in sorted(spaced):
        left = x[:i][::-1]
        higher = np.flatnonzero(left > x[i])
        left_min = left[: higher[0] if higher.size else left.size].min()
        right = x[i + 1 :]
        higher = np.flatnonzero(right > x[i])
        right_min = right[: higher[0] if higher.size else right.size].min()
        if x[i] - max(left_min, right_min) >= min_prominence:
            keep.append(i)
    return np.asarray(keep, dtype=np.intp)


def syllable_nuclei(
    energy_db: Float64Array, voiced: npt.NDArray[np.bool_], threshold_db: float
) -> int:
    """Count syllable nuclei in an energy contour, after de Jong & Wempe (2009).

    The 10 ms energy contour is smoothed with a 50 ms moving average; a nucleus is a
    local maximum of the smoothed contour that is at least ``threshold_db``, stands
    out by 2 dB or more from the dips on either side (peak prominence), lies 80 ms or
    more from the next counted peak, and lies within 20 ms of a voiced frame (DIO
    tends to declare voicing a frame or two late at a syllable onset).
    """
    if energy_db.size < 3:
        return 0
    smooth = np.convolve(energy_db, np.ones(5) / 5.0, mode="same")
    peaks = _nuclei_peaks(smooth, threshold_db, min_prominence=2.0, min_distance=8)
    near_voiced = np.convolve(voiced.astype(np.float64), np.ones(5), mode="same") > 0
    return int(np.count_nonzero(near_voiced[peaks]))


def window_stats(frames: Sequence[ProsodyFrame], seconds: float) -> ProsodyStats:
    """Statistics of the last ``seconds`` of ``frames`` (e.g. 0.5 or 2.0); see ProsodyStats."""
    nan = math.nan
    if not frames:
        return ProsodyStats(
            t_end=0.0,
            seconds=seconds,
            n_frames=0,
            voiced_ratio=0.0,
            f0_median_hz=nan,
            f0_median_st=nan,
            f0_range_st=nan,
            f0_slope_st_s=nan,
            energy_mean_db=nan,
            energy_std_db=nan,
            speech_rate=0.0,
            articulation_rate=0.0,
            pause_ratio=1.0,
        )
    t_all = np.fromiter((f.t for f in frames), dtype=np.float64, count=len(frames))
    e_all = np.fromiter((f.energy_db for f in frames), dtype=np.float64, count=len(frames))
    t_end = float(t_all[-1])
    sel = t_all > t_end - seconds + 1e-9
    win = [f for f, s in zip(frames, sel, strict=True) if s]
    t = t_all[sel]
    energy = e_all[sel]
    voiced = np.fromiter((f.voiced for f in win), dtype=np.bool_, count=len(win))
    f0 = np.fromiter((f.f0 for f in win), dtype=np.float64, count=len(win))

    threshold = max(-55.0, float(np.percentile(e_all, 95)) - 30.0)
    active = energy >= threshold
    duration = len(win) * HOP_S
    pause_ratio = 1.0 - float(np.count_nonzero(active)) / len(win)

    f0_median_hz = f0_median_st = f0_range_st = f0_slope = nan
    if voiced.any():
        st = hz_to_semitones(f0[voiced])
        f0_median_hz = float(np.median(f0[voiced]))
        f0_median_st = float(hz_to_semitones(f0_median_hz))
        p10, p90 = np.percentile(st, [10, 90])
        f0_range_st = float(p90 - p10)
        if st.size >= 3 and np.ptp(t[voiced]) > 0:
            f0_slope = float(np.polyfit(t[voiced], st, 1)[0])

    level = energy[voiced] if voiced.any() else energy[active]
    e_mean = float(level.mean()) if level.size else nan
    e_std = float(level.std()) if level.size else nan

    nuclei = syllable_nuclei(energy, voiced, threshold)
    active_s = float(np.count_nonzero(active)) * HOP_S
    return ProsodyStats(
        t_end=t_end,
        seconds=seconds,
        n_frames=len(win),
        voiced_ratio=float(voiced.mean()),
        f0_median_hz=f0_median_hz,
        f0_median_st=f0_median_st,
        f0_range_st=f0_range_st,
        f0_slope_st_s=f0_slope,
        energy_mean_db=e_mean,
        energy_std_db=e_std,
        speech_rate=nuclei / duration,
        articulation_rate=nuclei / active_s if active_s > 0 else 0.0,
        pause_ratio=pause_ratio,
    )
