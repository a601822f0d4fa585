"""The rendered avatar: frame format, asset errors, and what a face tracker sees."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from avatar_agent.avatar.animator import IdleAnimator, Pose
from avatar_agent.avatar.render import AvatarRenderer, default_avatar_dir
from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.testing import measure

FPS = 30.0


@pytest.fixture(scope="module")
def renderer() -> AvatarRenderer:
    return AvatarRenderer()


def face_mesh(static: bool) -> FaceAnalyzer:
    return FaceAnalyzer(static_image_mode=static, max_faces=1)


def lip_gap(mesh: FaceAnalyzer, frame: np.ndarray) -> float | None:
    """Inner-lip distance (landmarks 13-14) over face height (10-152), or None if no face."""
    points = mesh.detect(frame)
    return None if points is None else measure.lip_gap(points, frame.shape[1], frame.shape[0])


def idle_sequence(seed: int = 0) -> Iterator[Pose]:
    """Four seconds of idle life with the mouth swinging fully open and shut, then
    the head driven to the corners of its idle range."""
    anim = IdleAnimator(seed)
    for k in range(120):
        t = k / FPS
        yield anim.pose(t, 0.5 - 0.5 * math.cos(2.0 * math.pi * t / 1.1))
    for k in range(30):
        sign = 1.0 if k % 2 else -1.0
        yield Pose(mouth_open=(k % 3) / 2.0, blink=1.0 if k % 7 == 0 else 0.0,
                   head_yaw=3.0 * sign, head_pitch=-3.0 * sign if k % 4 < 2 else 3.0 * sign,
                   head_roll=3.0 * sign, gaze_x=0.3 * sign, breath=sign)


def test_frame_format(renderer: AvatarRenderer) -> None:
    frame = renderer.render(Pose())
    assert frame.shape == (480, 640, 3)
    assert frame.dtype == np.uint8
    assert frame.flags["C_CONTIGUOUS"]
    assert 40 < frame.mean() < 220  # a picture, not a blank or blown-out frame


def test_custom_size() -> None:
    frame = AvatarRenderer(width=320, height=240).render(Pose(mouth_open=0.5))
    assert frame.shape == (240, 320, 3) and frame.flags["C_CONTIGUOUS"]


def test_pose_changes_the_right_regions(renderer: AvatarRenderer) -> None:
    rest = renderer.render(Pose()).astype(int)
    mouth = np.abs(renderer.render(Pose(mouth_open=1.0)).astype(int) - rest).sum(axis=2)
    blink = np.abs(renderer.render(Pose(blink=1.0)).astype(int) - rest).sum(axis=2)
    ys, _ = np.nonzero(mouth > 30)
    assert 240 < np.median(ys) < 330
    ys, _ = np.nonzero(blink > 30)
    assert 150 < np.median(ys) < 200
    assert (blink[300:] > 10).sum() == 0  # a blink leaves the body alone


def shoulder_line(frame: np.ndarray, x: int) -> float:
    """Sub-pixel row where the dark blazer starts in column x."""
    lum = frame[250:, x].astype(float).mean(axis=1)
    inside = lum < (lum.max() + lum.min()) / 2
    y = int(np.argmax(inside))
    return 250 + y - (lum[y - 1] - (lum.max() + lum.min()) / 2) / (lum[y - 1] - lum[y])


def test_breath_lifts_the_shoulders(renderer: AvatarRenderer) -> None:
    out_, in_ = renderer.render(Pose(breath=-1.0)), renderer.render(Pose(breath=1.0))
    for x in (150, 490):
        rise = shoulder_line(out_, x) - shoulder_line(in_, x)
        assert 0.8 < rise < 5.0, (x, rise)


def test_rendering_is_deterministic(renderer: AvatarRenderer) -> None:
    pose = Pose(mouth_open=0.4, blink=0.3, head_yaw=1.5, head_roll=-2.0, gaze_x=0.2, breath=0.5)
    assert np.array_equal(renderer.render(pose), renderer.render(pose))


def test_face_tracked_through_idle_sequence(renderer: AvatarRenderer) -> None:
    poses = list(idle_sequence())
    assert any(p.blink > 0.9 for p in poses[:120]), "the sequence must contain a blink"
    assert min(p.mouth_open for p in poses) < 0.01 and max(p.mouth_open for p in poses) > 0.99
    with face_mesh(static=False) as mesh:
        found = [lip_gap(mesh, renderer.render(p)) is not None for p in poses]
    assert np.mean(found) >= 0.95, f"face found in {np.mean(found):.1%} of frames"


def test_tracked_lip_gap_follows_mouth_open(renderer: AvatarRenderer) -> None:
    openings = [0.0, 0.25, 0.5, 0.75, 1.0]
    with face_mesh(static=True) as mesh:
        gaps = [lip_gap(mesh, renderer.render(Pose(mouth_open=o))) for o in openings]
    assert all(g is not None for g in gaps), gaps
    values = [g for g in gaps if g is not None]
    assert values[-1] > 0.05
    assert values[-1] > 5.0 * max(values[0], 0.005)
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values


def test_missing_avatar_dir(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-avatar"
    with pytest.raises(FileNotFoundError, match="no-such-avatar"):
        AvatarRenderer(missing)


def copy_avatar(tmp_path: Path) -> Path:
    dst = tmp_path / "avatar"
    shutil.copytree(default_avatar_dir(), dst)
    return dst


def test_missing_layer(tmp_path: Path) -> None:
    avatar = copy_avatar(tmp_path)
    (avatar / "mouth.png").unlink()
    with pytest.raises(FileNotFoundError, match="mouth.png"):
        AvatarRenderer(avatar)


def test_corrupt_layer(tmp_path: Path) -> None:
    avatar = copy_avatar(tmp_path)
    (avatar / "head.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="head.png"):
        AvatarRenderer(avatar)


def test_rig_that_does_not_match_the_art(tmp_path: Path) -> None:
    avatar = copy_avatar(tmp_path)
    rig = json.loads((avatar / "rig.json").read_text())
    rig["mouth"]["levels"] += 1
    (avatar / "rig.json").write_text(json.dumps(rig))
    with pytest.raises(ValueError, match="mouth.png"):
        AvatarRenderer(avatar)


def test_malformed_rig(tmp_path: Path) -> None:
    avatar = copy_avatar(tmp_path)
    (avatar / "rig.json").write_text("{\"format\": 1}")
    with pytest.raises(ValueError, match="rig.json"):
        AvatarRenderer(avatar)


# --- body-language cues -----------------------------------------------------------

def cue_sweep() -> Iterator[Pose]:
    """Every cue driven across its range by the cue animator, from a calm to a furious
    customer and back, in every conversation state, with speech-like mouth motion."""
    from avatar_agent.avatar.animator import CueAnimator
    from avatar_agent.avatar.behavior import CueTargets

    extremes = [
        CueTargets(lean=0.1, head_tilt=1.5, brow_raise=0.1, mouth_curve=0.5),
        CueTargets(lean=1.0, head_tilt=8.0, head_pitch=-8.0, nod=1.0, brow_raise=1.0,
                   brow_frown=1.0, mouth_curve=-1.0, gaze_hold=1.0, motion=1.5),
        CueTargets(lean=0.0, head_tilt=-8.0, head_pitch=8.0, brow_raise=-1.0, mouth_curve=1.0,
                   gaze_hold=0.0, saccade_rate=3.0, blink_rate=40.0, motion=1.5),
        CueTargets(lean=1.0, brow_frown=1.0, mouth_curve=-1.0, nod=1.0, blink_rate=30.0),
    ]
    anim = CueAnimator(3)
    k = 0
    for targets in extremes:
        anim.set_targets(targets)
        for _ in range(60):
            t = k / FPS
            yield anim.pose(t, max(0.0, math.sin(2.0 * math.pi * t / 0.9)))
            k += 1


def test_face_tracked_across_all_cue_extremes(renderer: AvatarRenderer) -> None:
    poses = list(cue_sweep())
    assert max(p.lean for p in poses) > 0.95 and max(p.brow_frown for p in poses) > 0.95
    assert min(p.mouth_curve for p in poses) < -0.5 and max(p.mouth_curve for p in poses) > 0.5
    with face_mesh(static=False) as mesh:
        found = [lip_gap(mesh, renderer.render(p)) is not None for p in poses]
    assert np.mean(found) >= 0.95, f"face found in {np.mean(found):.1%} of frames"


def changed(renderer: AvatarRenderer, a: Pose, b: Pose) -> np.ndarray:
    diff = np.abs(renderer.render(a).astype(int) - renderer.render(b).astype(int)).sum(axis=2)
    return np.asarray(diff > 30)


def test_brow_cues_change_only_the_brows(renderer: AvatarRenderer) -> None:
    for pose in (Pose(brow_raise=1.0), Pose(brow_raise=-1.0), Pose(brow_frown=1.0)):
        ys, xs = np.nonzero(changed(renderer, Pose(), pose))
        assert len(ys) > 150, pose
        assert ys.min() >= 140 and ys.max() <= 175, pose
        assert xs.min() >= 255 and xs.max() <= 385, pose
    # the frown works on the inner ends: more change near the midline than at the tips
    frown = changed(renderer, Pose(), Pose(brow_frown=1.0))
    assert frown[:, 290:352].sum() > 2 * (frown[:, 255:290].sum() + frown[:, 352:385].sum())


def test_mouth_curve_moves_the_corners(renderer: AvatarRenderer) -> None:
    def corner_rows(pose: Pose) -> tuple[float, float]:
        """Row of the lip colour's edge just inside each mouth corner."""
        frame = renderer.render(pose).astype(int)
        lip = (frame[..., 0] - frame[..., 1]) > 60
        rows = []
        for x in (297, 343):
            ys = np.nonzero(lip[230:290, x])[0]
            rows.append(float(ys.mean()) + 230)
        return rows[0], rows[1]

    rest, smile, down = corner_rows(Pose()), corner_rows(Pose(mouth_curve=1.0)), \
        corner_rows(Pose(mouth_curve=-1.0))
    for i in range(2):
        assert smile[i] < rest[i] - 1.0 < down[i] - 2.0, (rest, smile, down)
    ys, _ = np.nonzero(changed(renderer, Pose(), Pose(mouth_curve=1.0)))
    assert ys.min() > 235 and ys.max() < 285


def test_lean_brings_head_and_shoulders_closer(renderer: AvatarRenderer) -> None:
    def face_width(frame: np.ndarray) -> int:
        with face_mesh(static=True) as mesh:
            points = mesh.detect(frame)
        assert points is not None
        return round(abs(float(points[234, 0] - points[454, 0])) * frame.shape[1] * 10)

    upright, lean = renderer.render(Pose()), renderer.render(Pose(lean=1.0))
    growth = face_width(lean) / face_width(upright) - 1.0
    # rig lean.scale 0.12: enough to read in one frame, not a zoom
    assert 0.09 <= growth <= 0.15, growth
    # the shoulders come closer too: the blazer's edge moves outward (low in the frame:
    # the lean scales about eye height, so the shoulders also move down)
    row = 460
    dark_up = np.nonzero(upright[row].astype(int).sum(1) < 200)[0]
    dark_lean = np.nonzero(lean[row].astype(int).sum(1) < 200)[0]
    assert dark_lean.min() < dark_up.min() and dark_lean.max() > dark_up.max()
    # the room behind stays where it is
    assert np.abs(lean[:60, :100].astype(int) - upright[:60, :100].astype(int)).max() <= 2
