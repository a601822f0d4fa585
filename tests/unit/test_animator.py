"""Idle animation: blinks, breathing, head sway and gaze as pure functions of time."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.avatar.animator import IdleAnimator, Pose

FPS = 30.0


def run(seed: int, seconds: float, fps: float = FPS) -> list[Pose]:
    anim = IdleAnimator(seed)
    return [anim.pose(k / fps) for k in range(int(seconds * fps))]


def column(poses: list[Pose], name: str) -> np.ndarray:
    return np.array([getattr(p, name) for p in poses])


def blink_starts(blink: np.ndarray, level: float = 0.5) -> np.ndarray:
    closed = blink > level
    return np.flatnonzero(closed[1:] & ~closed[:-1]) + 1


def test_same_seed_same_poses() -> None:
    assert run(7, 20.0) == run(7, 20.0)


def test_different_seeds_differ() -> None:
    assert run(1, 10.0) != run(2, 10.0)


def test_pose_does_not_depend_on_which_frames_were_asked() -> None:
    every = IdleAnimator(3)
    sparse = IdleAnimator(3)
    times = [k / FPS for k in range(900)]
    dense_poses = [every.pose(t) for t in times]
    for k in range(0, 900, 37):
        assert sparse.pose(times[k]) == dense_poses[k]


def test_blinks_at_a_natural_rate() -> None:
    for seed in range(5):
        poses = run(seed, 60.0)
        blink = column(poses, "blink")
        starts = blink_starts(blink)
        # one blink every 2-6 s → 10-30 in a minute
        assert 10 <= len(starts) <= 31, (seed, len(starts))
        gaps = np.diff(starts) / FPS
        assert gaps.min() >= 1.9
        assert gaps.max() <= 6.2
        assert blink.max() == 1.0


def test_blinks_are_short_but_visible_at_30_fps() -> None:
    blink = column(run(4, 60.0), "blink")
    moving = blink > 0.05
    edges = np.flatnonzero(np.diff(moving.astype(int)))
    lengths = (edges[1::2] - edges[0::2]) / FPS
    assert len(lengths) >= 10
    assert lengths.min() >= 2 / FPS  # no single-frame flicker
    assert lengths.max() <= 0.25
    assert np.mean(blink < 0.01) > 0.9  # eyes open most of the time


def test_values_in_bounds() -> None:
    poses = run(11, 120.0)
    for name, lo, hi in (("blink", 0.0, 1.0), ("head_yaw", -3.0, 3.0), ("head_pitch", -3.0, 3.0),
                         ("head_roll", -3.0, 3.0), ("gaze_x", -1.0, 1.0), ("gaze_y", -1.0, 1.0),
                         ("breath", -1.0, 1.0), ("mouth_open", 0.0, 0.0)):
        values = column(poses, name)
        assert values.min() >= lo and values.max() <= hi, name


def test_idle_motion_actually_moves() -> None:
    poses = run(5, 60.0)
    assert np.ptp(column(poses, "head_yaw")) > 1.0
    assert np.ptp(column(poses, "head_pitch")) > 0.5
    assert np.ptp(column(poses, "head_roll")) > 0.5
    assert np.ptp(column(poses, "breath")) > 1.5
    gaze = np.stack([column(poses, "gaze_x"), column(poses, "gaze_y")], 1)
    assert len({tuple(np.round(g, 3)) for g in gaze}) > 20
    assert np.abs(gaze).max() > 0.05


def test_no_jumps_between_frames() -> None:
    poses = run(9, 60.0)
    limits = {"head_yaw": 0.1, "head_pitch": 0.1, "head_roll": 0.1, "breath": 0.06,
              "gaze_x": 0.2, "gaze_y": 0.2}
    for name, limit in limits.items():
        step = np.abs(np.diff(column(poses, name))).max()
        assert step <= limit, (name, step)


def test_breathing_rate() -> None:
    breath = column(run(2, 60.0), "breath")
    crossings = np.count_nonzero(np.diff(np.sign(breath)) != 0)
    # 0.22-0.28 Hz → two crossings per cycle
    assert 24 <= crossings <= 36


def test_mouth_is_passed_through_and_clamped() -> None:
    anim = IdleAnimator(0)
    assert anim.pose(1.0, 0.7).mouth_open == pytest.approx(0.7)
    assert anim.pose(1.0, 1.5).mouth_open == 1.0
    assert anim.pose(1.0, -0.2).mouth_open == 0.0
    # the mouth does not disturb the idle motion
    a, b = anim.pose(2.0, 0.0), anim.pose(2.0, 1.0)
    assert (a.blink, a.head_yaw, a.gaze_x, a.breath) == (b.blink, b.head_yaw, b.gaze_x, b.breath)


def test_skipped_frames_still_show_blinks() -> None:
    # a caller that drops to 10 fps still sees the eyes close at least half-way
    blink = column(run(6, 60.0, fps=10.0), "blink")
    assert len(blink_starts(blink, 0.3)) >= 5
