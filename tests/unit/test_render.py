"""The rendered avatar: frame format, asset errors, and what a face tracker sees."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import mediapipe as mp
import numpy as np
import pytest

from avatar_agent.avatar.animator import IdleAnimator, Pose
from avatar_agent.avatar.render import AvatarRenderer, default_avatar_dir

FPS = 30.0


@pytest.fixture(scope="module")
def renderer() -> AvatarRenderer:
    return AvatarRenderer()


def face_mesh(static: bool) -> mp.solutions.face_mesh.FaceMesh:
    return mp.solutions.face_mesh.FaceMesh(
        static_image_mode=static, refine_landmarks=True, max_num_faces=1
    )


def lip_gap(mesh: mp.solutions.face_mesh.FaceMesh, frame: np.ndarray) -> float | None:
    """Inner-lip distance (landmarks 13-14) over face height (10-152), or None if no face."""
    result = mesh.process(frame)
    if not result.multi_face_landmarks:
        return None
    lm = result.multi_face_landmarks[0].landmark
    h, w = frame.shape[:2]

    def dist(a: int, b: int) -> float:
        return math.hypot((lm[a].x - lm[b].x) * w, (lm[a].y - lm[b].y) * h)

    return dist(13, 14) / dist(10, 152)


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
