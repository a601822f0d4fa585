from __future__ import annotations

import math

import numpy as np
import pytest

from avatar_agent.affect.state import AffectState, LevelTracker, Smoother
from avatar_agent.core.config import AffectConfig, LevelConfig
from avatar_agent.core.events import encode

EMOTIONS = ("neutral", "happy", "sad", "angry")
RATE_HZ = 4.0


def changes(levels: list[str]) -> int:
    return sum(a != b for a, b in zip(levels, levels[1:], strict=False))


def noisy_index(seconds: float = 120.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An anger index hovering at the dissatisfied threshold (40) with sd 8 noise, at 4 Hz."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    x = 40.0 + np.random.default_rng(seed).normal(0.0, 8.0, t.size)
    return t, x


def test_smoothed_index_does_not_flap_where_a_naive_threshold_does() -> None:
    t, raw = noisy_index()
    smooth = Smoother(AffectConfig().smoothing_s)
    index = [float(smooth.update(ti, [xi])[0]) for ti, xi in zip(t, raw, strict=True)]
    tracker = LevelTracker(LevelConfig())
    levels = [tracker.update(ti, xi) for ti, xi in zip(t, index, strict=True)]
    naive = ["dissatisfied" if xi >= 40.0 else "calm" for xi in index]
    assert changes(levels) <= 3
    assert levels.count("dissatisfied") > 0.9 * len(levels)  # it settles on the right level
    assert changes(naive) >= 24  # the same input, without hysteresis, flaps dozens of times


def test_hysteresis_and_dwell_tame_even_the_raw_noise() -> None:
    # Unsmoothed, sd 8 noise crosses the whole 30..40 band often; the dwell caps the rate.
    t, raw = noisy_index()
    tracker = LevelTracker(LevelConfig())
    levels = [tracker.update(ti, xi) for ti, xi in zip(t, raw, strict=True)]
    naive = ["dissatisfied" if xi >= 40.0 else "calm" for xi in raw]
    assert changes(levels) <= 120 / LevelConfig().min_dwell_s
    assert changes(naive) > 4 * changes(levels)


def test_no_hysteresis_no_dwell_would_flap() -> None:
    # Shows the assertion above can fail: a band of zero width and no dwell flaps.
    cfg = LevelConfig(dissatisfied_enter=40.0, dissatisfied_exit=39.999, min_dwell_s=0.0)
    t, raw = noisy_index()
    tracker = LevelTracker(cfg)
    levels = [tracker.update(ti, xi) for ti, xi in zip(t, raw, strict=True)]
    assert changes(levels) > 100


def test_band_between_exit_and_enter_holds_the_level() -> None:
    tr = LevelTracker(LevelConfig(min_dwell_s=0.0))
    assert tr.update(0.0, 35.0) == "calm"  # below enter: stays calm
    assert tr.update(1.0, 41.0) == "dissatisfied"
    assert tr.update(2.0, 31.0) == "dissatisfied"  # above exit: stays
    assert tr.update(3.0, 29.0) == "calm"
    assert tr.update(4.0, 69.0) == "dissatisfied"
    assert tr.update(5.0, 70.0) == "furious"
    assert tr.update(6.0, 59.0) == "furious"  # above furious exit
    assert tr.update(7.0, 50.0) == "dissatisfied"  # below furious exit, above dissatisfied exit
    assert tr.update(8.0, 75.0) == "furious"
    assert tr.update(9.0, 10.0) == "calm"  # straight down


def test_dwell_is_respected() -> None:
    tr = LevelTracker(LevelConfig(min_dwell_s=3.0))
    assert tr.update(0.0, 50.0) == "dissatisfied"  # the first update may change at once
    assert tr.update(1.0, 0.0) == "dissatisfied"
    assert tr.update(2.9, 0.0) == "dissatisfied"
    assert tr.update(3.0, 0.0) == "calm"
    assert tr.since == 3.0
    assert tr.update(3.5, 90.0) == "calm"
    assert tr.update(5.9, 90.0) == "calm"
    assert tr.update(6.0, 90.0) == "furious"
    # a change wanted during the dwell but no longer wanted after it does not happen
    assert tr.update(7.0, 10.0) == "furious"
    assert tr.update(9.5, 80.0) == "furious"
    assert tr.level == "furious"


def test_calm_to_furious_directly() -> None:
    tr = LevelTracker(LevelConfig())
    assert tr.update(0.0, 10.0) == "calm"
    assert tr.update(0.25, 75.0) == "furious"


def test_smoothing_on_irregular_dt() -> None:
    s = Smoother(1.0)
    assert s.update(0.0, [0.0, 10.0]).tolist() == [0.0, 10.0]
    a = 1 - math.exp(-0.5)
    assert s.update(0.5, [1.0, 10.0]) == pytest.approx([a, 10.0])
    b = a + (1 - a) * (1 - math.exp(-2.0))
    assert s.update(2.5, [1.0, 10.0]) == pytest.approx([b, 10.0])
    # the response depends on elapsed time, not on the number of samples
    fine, coarse = Smoother(0.8), Smoother(0.8)
    fine.update(0.0, [0.0])
    coarse.update(0.0, [0.0])
    for t in (0.1, 0.25, 0.3, 0.7, 1.0):
        last = fine.update(t, [1.0])
    assert last == pytest.approx(coarse.update(1.0, [1.0]))
    assert last == pytest.approx([1 - math.exp(-1.0 / 0.8)])


def test_smoother_edge_cases() -> None:
    s = Smoother(0.0)
    s.update(0.0, [1.0])
    assert s.update(0.1, [5.0]).tolist() == [5.0]  # tau 0: no smoothing
    s = Smoother(1.0)
    s.update(1.0, [1.0])
    assert s.update(0.5, [9.0]).tolist() == [1.0]  # time going backwards moves nothing
    with pytest.raises(ValueError):
        s.update(2.0, [1.0, 2.0])
    with pytest.raises(ValueError):
        Smoother(-1.0)


def probs(angry: float) -> list[float]:
    rest = (1.0 - angry) / 3
    return [rest, rest, rest, angry]


def test_affect_state_snapshot_and_message() -> None:
    st = AffectState(AffectConfig(smoothing_s=1.0))
    snap = st.update(0.0, 0.2, -0.1, probs(0.1), EMOTIONS)
    assert snap.anger_index == pytest.approx(10.0)
    assert snap.level == "calm" and not snap.level_changed
    assert set(snap.probs) == set(EMOTIONS)
    msg = encode(st.update(0.25, 0.123456, -0.98765, probs(0.1), EMOTIONS).update("c1"),
                 for_customer=True)
    assert list(msg) == ["type", "t", "arousal", "valence", "anger_index", "level", "emotion"]
    assert msg["type"] == "affect" and msg["t"] == 0.25 and msg["level"] == "calm"
    assert msg["arousal"] == round(msg["arousal"], 3) and msg["anger_index"] == 10.0
    assert all(isinstance(msg[k], float) for k in ("t", "arousal", "valence", "anger_index"))


def test_affect_state_level_and_emotion_follow_the_smoothed_probs() -> None:
    st = AffectState(AffectConfig(smoothing_s=1.0))
    st.update(0.0, 0.0, 0.0, [0.7, 0.1, 0.1, 0.1], EMOTIONS)
    # one odd window of pure anger does not change the emotion or the level
    snap = st.update(0.25, 0.9, -0.9, [0.0, 0.0, 0.0, 1.0], EMOTIONS)
    assert snap.emotion == "neutral" and snap.level == "calm"
    assert 10.0 < snap.anger_index < 40.0
    levels = []
    for k in range(2, 40):
        levels.append(st.update(k / RATE_HZ, 0.9, -0.9, [0.0, 0.0, 0.0, 1.0], EMOTIONS))
    assert levels[-1].emotion == "angry" and levels[-1].level == "furious"
    assert levels[-1].anger_index <= 100.0
    assert sum(s.level_changed for s in levels) == 2  # calm → dissatisfied → furious


def test_affect_state_rejects_bad_input() -> None:
    st = AffectState(AffectConfig())
    with pytest.raises(ValueError):
        st.update(0.0, 0.0, 0.0, [0.5, 0.5], EMOTIONS)
    with pytest.raises(ValueError, match="angry"):
        st.update(0.0, 0.0, 0.0, [0.5, 0.5], ("neutral", "happy"))
    st.update(0.0, 0.0, 0.0, probs(0.1), EMOTIONS)
    with pytest.raises(ValueError, match="changed"):
        st.update(0.25, 0.0, 0.0, probs(0.1), ("angry", "happy", "sad", "neutral"))
