"""Idle animation: blinks, breathing, head sway and gaze as pure functions of time."""

from __future__ import annotations

import dataclasses

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


# --- cue animator: springs from persona targets to the pose ----------------------

from pathlib import Path  # noqa: E402

from avatar_agent.avatar.animator import CueAnimator  # noqa: E402
from avatar_agent.avatar.behavior import (  # noqa: E402
    AffectInput,
    CueTargets,
    cue_targets,
    load_persona,
)

BEHAVIORS = Path(__file__).resolve().parents[2] / "configs" / "behaviors"
SUPPORT, RECEPTIONIST = BEHAVIORS / "support.yaml", BEHAVIORS / "receptionist.yaml"

CUE_FIELDS = ("lean", "brow_raise", "brow_frown", "mouth_curve")
# the most any cue may change from one 30 fps frame to the next
MAX_STEP = {"lean": 0.03, "brow_raise": 0.09, "brow_frown": 0.075, "mouth_curve": 0.09,
            "head_roll": 0.6, "head_pitch": 0.9}


def drive(anim: CueAnimator, start: int, frames: int, mouth: float = 0.0) -> list[Pose]:
    return [anim.pose(k / FPS, mouth) for k in range(start, start + frames)]


def test_target_steps_never_jump_a_frame() -> None:
    extremes = [CueTargets(), CueTargets(lean=1, head_tilt=8, brow_raise=1, brow_frown=1,
                                         mouth_curve=1, nod=1),
                CueTargets(lean=0, head_tilt=-8, brow_raise=-1, brow_frown=0, mouth_curve=-1),
                CueTargets(lean=1, brow_frown=1, mouth_curve=-1, nod=1)]
    anim = CueAnimator(2)
    poses: list[Pose] = []
    k = 0
    for _ in range(3):
        for targets in extremes:
            anim.set_targets(targets)
            n = 15 if len(poses) % 2 else 60  # some steps interrupt a motion half-way
            poses += drive(anim, k, n)
            k += n
    for name, bound in MAX_STEP.items():
        steps = np.abs(np.diff(column(poses, name)))
        assert steps.max() <= bound, (name, steps.max())


def test_no_overshoot_or_jitter_after_a_step() -> None:
    anim = CueAnimator(0)
    anim.set_targets(CueTargets(lean=0.8, brow_frown=0.7, mouth_curve=-0.4, brow_raise=0.3,
                                motion=0.0, nod=0.0))
    poses = drive(anim, 0, 150)
    for name, target in (("lean", 0.8), ("brow_frown", 0.7), ("mouth_curve", -0.4),
                         ("brow_raise", 0.3)):
        values = column(poses, name)
        sign = np.sign(target)
        assert (np.diff(values) * sign >= -1e-9).all(), name  # monotone: no oscillation
        assert (values * sign <= abs(target) + 1e-6).all(), name  # no overshoot
        assert abs(values[-1] - target) < 0.01, name  # settled within 5 s
        assert abs(values[30] - target) < 0.5 * abs(target), name  # half way within 1 s


def test_skipped_frames_pass_through_the_same_states() -> None:
    a, b = CueAnimator(4), CueAnimator(4)
    targets = CueTargets(lean=0.9, brow_frown=0.6, nod=0.8, gaze_hold=0.2, saccade_rate=1.5)
    a.set_targets(targets)
    b.set_targets(targets)
    dense = drive(a, 0, 300)
    sparse = [b.pose(k / FPS) for k in range(0, 300, 7)]
    for k, pose in zip(range(0, 300, 7), sparse, strict=True):
        assert pose == dense[k]


def test_nods_while_listening_as_the_persona_asks() -> None:
    support, receptionist = load_persona(SUPPORT), load_persona(RECEPTIONIST)
    furious = AffectInput("furious", 90)

    def pitch_range(persona_targets: CueTargets) -> float:
        anim = CueAnimator(5, persona_targets)
        anim.settle()
        pitch = column(drive(anim, 0, 300), "head_pitch")
        still = CueAnimator(5, dataclasses.replace(persona_targets, nod=0.0))
        still.settle()
        base = column(drive(still, 0, 300), "head_pitch")
        return float(np.abs(pitch - base).max())

    assert pitch_range(cue_targets(support, furious, "listening")) > 2.0
    assert pitch_range(cue_targets(support, furious, "idle")) < 2.5
    assert pitch_range(cue_targets(support, AffectInput(), "speaking")) == 0.0
    assert pitch_range(cue_targets(receptionist, furious, "listening")) == 0.0


def test_receptionist_barely_moves_but_blinks() -> None:
    recept = load_persona(RECEPTIONIST)
    anim = CueAnimator(6, cue_targets(recept, AffectInput(), "idle"))
    anim.settle()
    calm = drive(anim, 0, 600)
    anim.set_targets(cue_targets(recept, AffectInput("furious", 95), "listening"))
    poses = calm + drive(anim, 600, 600)
    for name in ("head_yaw", "head_pitch", "head_roll"):
        assert np.ptp(column(poses, name)) < 0.6, name
    assert np.ptp(column(poses, "lean")) == 0.0
    assert np.ptp(column(poses, "brow_frown")) == 0.0
    assert len(blink_starts(column(poses, "blink"))) >= 6  # 40 s at ~15 per minute
    assert np.ptp(column(poses, "gaze_x")) > 0.01


def test_support_sways_and_steady_gaze_means_fewer_saccades() -> None:
    support = load_persona(SUPPORT)

    def gaze_moves(affect: AffectInput, state: str) -> tuple[int, float]:
        anim = CueAnimator(8, cue_targets(support, affect, state))
        anim.settle()
        poses = drive(anim, 0, 1800)
        gaze = np.stack([column(poses, "gaze_x"), column(poses, "gaze_y")], 1)
        moving = np.abs(np.diff(gaze, axis=0)).sum(1) > 1e-6
        starts = int((moving[1:] & ~moving[:-1]).sum())
        return starts, float(np.abs(gaze[:, 0]).max())

    calm_n, calm_reach = gaze_moves(AffectInput(), "idle")
    fur_n, fur_reach = gaze_moves(AffectInput("furious", 90), "idle")
    assert fur_n < calm_n / 2, (calm_n, fur_n)
    assert fur_reach < calm_reach, (calm_reach, fur_reach)


def test_smile_blends_with_speech() -> None:
    anim = CueAnimator(0, CueTargets(mouth_curve=0.5))
    anim.settle()
    closed, open_ = anim.pose(0.0, 0.0), anim.pose(0.0, 1.0)
    assert closed.mouth_curve == pytest.approx(0.5)
    assert 0.0 < open_.mouth_curve < closed.mouth_curve
    assert open_.mouth_open == 1.0
