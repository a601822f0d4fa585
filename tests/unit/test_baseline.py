from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.perception.baseline import Baseline
from avatar_agent.perception.ring import FeatureRing


def feed(b: Baseline, values: np.ndarray, t0: float = 0.0, rate: float = 10.0) -> float:
    t = t0
    for v in values:
        b.update(t, np.atleast_1d(v).astype(np.float32))
        t += 1 / rate
    return t


def test_high_voice_is_normal_for_its_owner() -> None:
    """Two speakers 6 semitones apart both read as ~0 relative to their own baseline."""
    rng = np.random.default_rng(0)
    low, high = Baseline(1, warmup_s=3), Baseline(1, warmup_s=3)
    feed(low, 0 + rng.normal(0, 1, 40))
    feed(high, 6 + rng.normal(0, 1, 40))
    assert low.ready and high.ready
    assert abs(float(low.relative(np.array([0.0], np.float32))[0])) < 0.5
    assert abs(float(high.relative(np.array([6.0], np.float32))[0])) < 0.5
    # the same absolute pitch is excited for the low voice, calm for the high one
    assert float(low.relative(np.array([6.0], np.float32))[0]) > 3
    assert float(high.offset(np.array([6.0], np.float32))[0]) == pytest.approx(0, abs=0.6)


def test_warmup_counts_time_not_samples_and_ignores_gaps() -> None:
    b = Baseline(2, warmup_s=2.0)
    feed(b, np.zeros((10, 2)), rate=10)  # 0.9 s
    assert not b.ready
    b.update(100.0, np.zeros(2, np.float32))  # after a long gap: counts at most 0.5 s
    assert not b.ready and b.seconds == pytest.approx(1.4)
    feed(b, np.zeros((10, 2)), t0=100.1, rate=10)
    assert b.ready


def test_slow_adaptation_after_warmup() -> None:
    b = Baseline(1, warmup_s=1.0, tau_s=60.0)
    t = feed(b, np.zeros(20), rate=10)
    t = feed(b, np.full(20, 10.0), t0=t, rate=10)  # a 2 s outburst barely moves it
    assert float(b.mean[0]) < 0.5
    feed(b, np.full(3000, 10.0), t0=t, rate=10)  # five minutes later it has followed
    assert float(b.mean[0]) > 9


def test_bad_input() -> None:
    b = Baseline(3)
    with pytest.raises(ValueError):
        b.update(0.0, np.zeros(2, np.float32))
    b.update(0.0, np.array([np.nan, 0, 0], np.float32))  # ignored, not poisoning the mean
    assert np.all(np.isfinite(b.mean))
    assert np.all(b.relative(np.ones(3, np.float32)) == 0)


def test_ring_keeps_the_newest_rows_in_order() -> None:
    ring = FeatureRing(width=2, capacity=5)
    assert ring.latest() is None
    for i in range(8):
        ring.append(i * 0.1, np.array([i, -i], np.float32))
    assert len(ring) == 5 and ring.overwritten == 3
    t, rows = ring.window(since=0.0)
    assert list(rows[:, 0]) == [3, 4, 5, 6, 7]
    assert np.allclose(t, [0.3, 0.4, 0.5, 0.6, 0.7])
    t, rows = ring.window(since=0.55)
    assert list(rows[:, 0]) == [6, 7]
    latest = ring.latest()
    assert latest is not None and latest[0] == pytest.approx(0.7)
    with pytest.raises(ValueError):
        ring.append(1.0, np.zeros(3, np.float32))
