"""The in-memory ring a finished turn is cut from."""

from __future__ import annotations

import numpy as np

from avatar_agent.perception.turn_audio import RATE, TurnAudio


def test_a_turn_is_cut_by_media_time() -> None:
    ring = TurnAudio(seconds=2.0)
    ring.push(np.arange(RATE, dtype=np.float32), t0=5.0)  # 5.0-6.0 s
    ring.push(np.arange(RATE, 2 * RATE, dtype=np.float32), t0=99.0)  # continues; t0 ignored
    clip = ring.clip(5.5, 6.25)
    assert clip.size == round(0.75 * RATE)
    assert clip[0] == RATE // 2 and clip[-1] == round(1.25 * RATE) - 1


def test_only_the_last_seconds_are_kept() -> None:
    ring = TurnAudio(seconds=1.0)
    ring.push(np.arange(3 * RATE, dtype=np.float32), t0=0.0)
    clip = ring.clip(0.0, 3.0)
    assert clip.size == RATE and clip[0] == 2 * RATE
    for _ in range(7):  # many small pushes wrap around the ring
        ring.push(np.full(RATE // 4, 1.0, np.float32), t0=0.0)
    assert np.all(ring.clip(3.0, 10.0)[-RATE // 4:] == 1.0)
    assert ring.clip(8.0, 9.0).size == 0  # not heard yet
    assert TurnAudio().clip(0.0, 1.0).size == 0
