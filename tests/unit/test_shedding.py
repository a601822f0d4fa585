from __future__ import annotations

import pytest

from avatar_agent.perception.shedding import LoadShedder


def test_analysis_pauses_while_media_skips_and_resumes_after() -> None:
    s = LoadShedder(hold_s=1.0)
    fps = 15
    skips = 0
    allowed = []
    for k in range(5 * fps):  # 5 s of analysis ticks
        t = k / fps
        if k == 2 * fps:  # outgoing video skipped frames at t = 2 s
            skips += 3
        allowed.append(s.allow(t, skips))
    assert all(allowed[: 2 * fps])  # nothing held back while media is fine
    assert not any(allowed[2 * fps : 3 * fps])  # one second of pause
    assert all(allowed[3 * fps :])  # then back to full rate
    assert s.shed == fps


def test_each_new_skip_extends_the_pause() -> None:
    s = LoadShedder(hold_s=0.5)
    assert s.allow(0.0, 10)  # the first reading only sets the reference
    assert not s.allow(0.1, 11)
    assert not s.allow(0.5, 12)
    assert not s.allow(0.9, 12)
    assert s.allow(1.01, 12)


def test_bad_hold() -> None:
    with pytest.raises(ValueError):
        LoadShedder(0)
