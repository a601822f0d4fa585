from __future__ import annotations

import pytest

from avatar_agent.transport.pacing import pace

P = 1 / 30


def test_early_waits_until_due() -> None:
    p = pace(elapsed=0.010, next_index=1, period=P, max_late_frames=0)
    assert p.index == 1 and p.skipped == 0
    assert p.wait == pytest.approx(P - 0.010)


def test_on_time_is_sent_now() -> None:
    p = pace(elapsed=P + 0.001, next_index=1, period=P, max_late_frames=0)
    assert (p.index, p.wait, p.skipped) == (1, 0.0, 0)


def test_late_video_skips_to_newest_due_frame() -> None:
    # 100 ms late at 30 fps: frames 1, 2, 3 are past; produce 4 and count 3 drops.
    p = pace(elapsed=4 * P + 0.001, next_index=1, period=P, max_late_frames=0)
    assert (p.index, p.wait, p.skipped) == (4, 0.0, 3)


def test_audio_tolerates_small_stall_without_skipping() -> None:
    p = pace(elapsed=0.020 * 4, next_index=1, period=0.020, max_late_frames=5)
    assert (p.index, p.skipped) == (1, 0)


def test_audio_skips_after_long_stall() -> None:
    p = pace(elapsed=0.020 * 50 + 0.001, next_index=1, period=0.020, max_late_frames=5)
    assert p.index == 50 and p.skipped == 49


def test_simulated_stream_keeps_rate_and_never_builds_delay() -> None:
    """Drive the pacer with a consumer that is slow now and then."""
    t, nxt, sent, dropped = 0.0, 0, [], 0
    for k in range(300):
        p = pace(t, nxt, P, max_late_frames=0)
        t += p.wait
        sent.append(p.index)
        dropped += p.skipped
        nxt = p.index + 1
        t += 0.1 if k % 50 == 49 else 0.005  # a 100 ms hiccup every 50 frames
    assert sent == sorted(set(sent))
    # after a hiccup we are back on the clock: the last frame is at most one period behind
    assert t - sent[-1] * P <= P + 0.1
    assert dropped == sent[-1] + 1 - len(sent)
    assert dropped > 0


def test_bad_period() -> None:
    with pytest.raises(ValueError):
        pace(0.0, 0, 0.0, 0)
