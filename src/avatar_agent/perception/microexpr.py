"""Micro-expression events from a stream of :class:`FaceFeatures`.

A micro-expression is a brief, involuntary flash of an action unit: it rises
above the person's own resting level and falls back within about half a
second. Longer excursions are ordinary expressions and are deliberately not
reported. Pure and clock-free: the caller feeds frames, timestamps come from
the frames themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avatar_agent.perception.aus import AU_NAMES
from avatar_agent.perception.face import FaceFeatures

# Mean absolute deviation -> standard deviation for Gaussian noise (sqrt(pi/2)).
_MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)


@dataclass(frozen=True, slots=True)
class MicroExpression:
    kind: str  # AU feature name, e.g. "au12_lip_corner_puller"
    onset: float  # media-clock seconds of the first frame above the onset threshold
    duration: float  # seconds from onset until the value fell back below the release threshold
    peak: float  # largest z-score against the person's baseline during the burst


@dataclass(slots=True)
class _Track:
    centre: float = 0.0
    spread: float = 0.0  # running mean absolute deviation around ``centre``
    onset: float | None = None
    peak: float = 0.0
    frames: int = 0
    # Wait for the value to settle before a new onset: set after an over-long
    # (ordinary) expression, and after the face was lost, where the rise went unseen.
    blocked: bool = False


class MicroExpressionDetector:
    """Per-person, per-AU burst detector with a robust running baseline.

    The baseline starts as the median / mean absolute deviation of the first
    ``warmup_s`` seconds, then follows slow Huber-clipped EMAs (time constant
    ``baseline_tau_s``) so that outliers and bursts barely move it; it is frozen
    while a burst is in progress so a burst cannot raise its own bar. A burst
    starts when z > ``z_on``, ends when z < ``z_off``, and is reported if it lasted
    at most ``max_duration_s`` and spanned at least ``min_frames`` frames.
    """

    def __init__(
        self,
        *,
        au_names: Sequence[str] = AU_NAMES,
        warmup_s: float = 3.0,
        warmup_min_frames: int = 15,
        z_on: float = 4.0,
        z_off: float = 1.5,
        max_duration_s: float = 0.5,
        min_frames: int = 2,
        baseline_tau_s: float = 10.0,
        huber_k: float = 2.5,
        min_spread: float = 1e-3,
        max_gap_s: float = 0.25,
    ) -> None:
        if not 0 < z_off < z_on:
            raise ValueError("need 0 < z_off < z_on")
        if max_duration_s <= 0 or warmup_s < 0 or baseline_tau_s <= 0:
            raise ValueError("durations must be positive")
        self.au_names = tuple(au_names)
        self.warmup_s = warmup_s
        self.warmup_min_frames = warmup_min_frames
        self.z_on = z_on
        self.z_off = z_off
        self.max_duration_s = max_duration_s
        self.min_frames = max(1, min_frames)
        self.baseline_tau_s = baseline_tau_s
        self.huber_k = huber_k
        self.min_spread = min_spread
        self.max_gap_s = max_gap_s
        self._warm: list[list[float]] = [[] for _ in self.au_names]
        self._warm_start: float | None = None
        self._tracks: list[_Track] | None = None
        self._last_t: float | None = None

    @property
    def warmed_up(self) -> bool:
        return self._tracks is not None

    def update(self, f: FaceFeatures) -> list[MicroExpression]:
        if not f.present:
            self._abort_bursts()  # cannot tell whether a burst fell back while unseen
            return []
        dt = 0.0 if self._last_t is None else f.t - self._last_t
        if dt < 0 or dt > self.max_gap_s:
            self._abort_bursts()
            dt = 0.0
        self._last_t = f.t
        values = [float(f.au.get(name, 0.0)) for name in self.au_names]
        if self._tracks is None:
            self._collect(f.t, values)
            return []
        alpha = 1.0 - math.exp(-dt / self.baseline_tau_s)
        events: list[MicroExpression] = []
        for name, track, x in zip(self.au_names, self._tracks, values, strict=True):
            event = self._step(name, track, f.t, x, alpha)
            if event is not None:
                events.append(event)
        return events

    def _collect(self, t: float, values: list[float]) -> None:
        if self._warm_start is None:
            self._warm_start = t
        for store, x in zip(self._warm, values, strict=True):
            store.append(x)
        if t - self._warm_start < self.warmup_s or len(self._warm[0]) < self.warmup_min_frames:
            return
        tracks = []
        for store in self._warm:
            arr = np.asarray(store, dtype=np.float64)
            med = float(np.median(arr))
            tracks.append(_Track(centre=med, spread=float(np.mean(np.abs(arr - med)))))
        self._tracks = tracks
        self._warm = [[] for _ in self.au_names]

    def _step(
        self, name: str, tr: _Track, t: float, x: float, alpha: float
    ) -> MicroExpression | None:
        sigma = max(tr.spread * _MAD_TO_SIGMA, self.min_spread)
        z = (x - tr.centre) / sigma
        if tr.onset is None:
            if z > self.z_on and not tr.blocked:
                tr.onset, tr.peak, tr.frames = t, z, 1
                return None
            if tr.blocked and z < self.z_off:
                tr.blocked = False
            self._adapt(tr, x, sigma, alpha)
            return None
        if z >= self.z_off:
            tr.frames += 1
            tr.peak = max(tr.peak, z)
            if t - tr.onset > self.max_duration_s:
                # Held too long for a micro-expression; let the baseline follow it again.
                tr.onset, tr.blocked = None, True
            return None
        onset, duration, frames, peak = tr.onset, t - tr.onset, tr.frames, tr.peak
        tr.onset, tr.frames, tr.peak = None, 0, 0.0
        self._adapt(tr, x, sigma, alpha)
        if frames >= self.min_frames and duration <= self.max_duration_s:
            return MicroExpression(kind=name, onset=onset, duration=duration, peak=peak)
        return None

    def _adapt(self, tr: _Track, x: float, sigma: float, alpha: float) -> None:
        # Huber clipping: one wild frame moves the baseline by at most k sigma * alpha.
        r = float(np.clip(x - tr.centre, -self.huber_k * sigma, self.huber_k * sigma))
        tr.centre += alpha * r
        tr.spread += alpha * (abs(r) - tr.spread)

    def _abort_bursts(self) -> None:
        if self._tracks is None:
            return
        for tr in self._tracks:
            tr.onset, tr.frames, tr.peak, tr.blocked = None, 0, 0.0, True
