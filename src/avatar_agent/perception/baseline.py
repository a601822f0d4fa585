"""A customer's own neutral reference, so features can be read relative to that person.

The first seconds of a call (of a visible face, of voiced speech) set the reference;
after that it follows the person slowly. A naturally high voice or a face that
always looks a little stern is then "normal" for them, not a sign of arousal or anger.
Pure: fed values with their timestamps, no clock or I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from avatar_agent.perception.prosody import ProsodyFrame, hz_to_semitones

Vector = npt.NDArray[np.float32]


class Baseline:
    """Running mean and spread of a feature vector, per feature.

    During warm-up (until `warmup_s` seconds of samples have been seen) the reference
    is the plain mean and standard deviation of everything so far. After that it is
    an exponential average with time constant `tau_s`, so a long call can drift
    (fatigue, lighting) without a single outburst shifting the reference much.
    """

    def __init__(
        self, size: int, warmup_s: float = 5.0, tau_s: float = 120.0, min_std: float = 1e-3
    ) -> None:
        if size <= 0 or warmup_s <= 0 or tau_s <= 0:
            raise ValueError("size, warmup_s and tau_s must be positive")
        self.size = size
        self.warmup_s = warmup_s
        self.tau_s = tau_s
        self.min_std = min_std
        self._n = 0
        self._seen_s = 0.0
        self._last_t: float | None = None
        self._mean = np.zeros(size, np.float64)
        self._m2 = np.zeros(size, np.float64)  # sum of squared deviations (Welford)
        self._var = np.zeros(size, np.float64)

    @property
    def ready(self) -> bool:
        return self._seen_s >= self.warmup_s

    @property
    def seconds(self) -> float:
        return self._seen_s

    @property
    def mean(self) -> Vector:
        return self._mean.astype(np.float32)

    @property
    def std(self) -> Vector:
        return np.maximum(np.sqrt(self._var), self.min_std).astype(np.float32)

    def update(self, t: float, x: Vector) -> None:
        """Add one sample taken at time t (seconds, non-decreasing)."""
        v = np.asarray(x, np.float64)
        if v.shape != (self.size,):
            raise ValueError(f"expected {self.size} features, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            return
        # time covered by samples: gaps (no face, silence) do not count as reference time
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), 0.5)
        self._last_t = t
        if not self.ready:
            self._seen_s += dt
            self._n += 1
            d = v - self._mean
            self._mean += d / self._n
            self._m2 += d * (v - self._mean)
            self._var = self._m2 / self._n
            return
        self._seen_s += dt
        a = 1.0 - np.exp(-dt / self.tau_s) if dt > 0 else 0.0
        d = v - self._mean
        self._mean += a * d
        self._var = (1 - a) * (self._var + a * d * d)

    def relative(self, x: Vector) -> Vector:
        """x as z-scores against the reference (zeros until anything was seen)."""
        if self._n == 0:
            return np.zeros(self.size, np.float32)
        return ((np.asarray(x, np.float64) - self._mean) / self.std).astype(np.float32)

    def offset(self, x: Vector) -> Vector:
        """x minus the reference mean, in the feature's own unit (dB, semitones)."""
        if self._n == 0:
            return np.zeros(self.size, np.float32)
        return (np.asarray(x, np.float64) - self._mean).astype(np.float32)


class VoiceBaseline:
    """Pitch (semitones) and loudness (dB) of voiced speech against the speaker's own.

    Only voiced frames teach the reference: silence says nothing about a voice.
    """

    def __init__(self, warmup_s: float = 3.0) -> None:
        self.baseline = Baseline(2, warmup_s=warmup_s)

    def update(self, t: float, frame: ProsodyFrame) -> tuple[float, float]:
        """Feed one hop at time t; returns (pitch offset in st, energy offset in dB)."""
        if not frame.voiced:
            return 0.0, 0.0
        x = np.array([float(hz_to_semitones(frame.f0)), frame.energy_db], np.float32)
        self.baseline.update(t, x)
        off = self.baseline.offset(x)
        return float(off[0]), float(off[1])
