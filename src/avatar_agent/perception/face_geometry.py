"""Rigid head geometry for MediaPipe face-mesh landmarks.

Head pose is a similarity transform (scale, rotation, translation) fitted by
least squares (Umeyama) from a subset of MediaPipe's canonical face model onto
the detected 3-D landmarks. Only points that facial muscles barely move are
used (eye corners, nose bridge, forehead, temples, upper cheek bones), so an
expression does not masquerade as a head turn. Inverting the transform gives
the landmarks in a frontal, size-normalised frame in which the action-unit
geometry in :mod:`avatar_agent.perception.aus` is measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

N_LANDMARKS = 478
"""468 mesh points + 2 x 5 iris points (``refine_landmarks=True``)."""

# Canonical face model (MediaPipe face_geometry/data/canonical_face_model.obj,
# Apache-2.0), x to the subject's left (image right), y up, z towards the camera,
# units ~cm. The model is left/right symmetric, so only one side is stored and
# its mirror is derived.
_CANON_MIDLINE: dict[int, tuple[float, float, float]] = {
    1: (0.0, -1.126865, 7.475604),
    4: (0.0, -0.463170, 7.586580),
    5: (0.0, 0.365669, 7.242870),
    6: (0.0, 2.473255, 5.788627),
    168: (0.0, 3.271027, 5.236015),
    8: (0.0, 4.019042, 5.284764),
    9: (0.0, 4.885979, 5.385258),
    151: (0.0, 6.545390, 5.027311),
    10: (0.0, 8.261778, 4.481535),
}
# (subject's right index, its mirror on the left): canonical coordinates of the right one.
_CANON_PAIRS: dict[tuple[int, int], tuple[float, float, float]] = {
    (33, 263): (-4.445859, 2.663991, 3.173422),  # outer eye corners
    (133, 362): (-1.856432, 2.585245, 3.757904),  # inner eye corners
    (130, 359): (-4.670959, 2.664461, 3.084075),
    (127, 356): (-7.743095, 2.364999, -2.005167),  # temple by the ear
    (116, 345): (-6.465170, 0.937119, 1.689873),  # cheek bone
    (123, 352): (-6.338145, -0.529279, 1.881175),
    (21, 251): (-7.087960, 5.434801, 0.099620),
    (54, 284): (-6.279331, 6.615427, 1.425850),
    (103, 332): (-5.133204, 7.485602, 2.660442),
    (67, 297): (-3.523964, 8.005976, 3.729163),
    (109, 338): (-1.891399, 8.236377, 4.274997),
}


def _rigid_model() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    idx: list[int] = list(_CANON_MIDLINE)
    pts: list[tuple[float, float, float]] = list(_CANON_MIDLINE.values())
    for (right, left), (x, y, z) in _CANON_PAIRS.items():
        idx += [right, left]
        pts += [(x, y, z), (-x, y, z)]
    return np.asarray(idx, dtype=np.intp), np.asarray(pts, dtype=np.float64)


RIGID_INDICES, RIGID_CANONICAL = _rigid_model()
CANONICAL_IOD = 2.0 * 4.445859
"""Outer-eye-corner distance of the canonical model: the unit of the frontal frame."""


@dataclass(frozen=True, slots=True)
class HeadFit:
    """``camera_points ~= scale * rotation @ canonical + translation``."""

    scale: float
    rotation: npt.NDArray[np.float64]
    translation: npt.NDArray[np.float64]
    rms_residual: float  # in inter-ocular units: a sanity check on the fit


def to_camera(
    points: npt.NDArray[np.floating[Any]], width: int, height: int
) -> npt.NDArray[np.float64]:
    """MediaPipe normalised (x right, y down, z away, all /width except y) -> pixels, y up, z near.

    MediaPipe scales z roughly like x, so both are multiplied by the width.
    """
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[:, 0] * width, -p[:, 1] * height, -p[:, 2] * width], axis=1)


def from_camera(cam: npt.NDArray[np.float64], width: int, height: int) -> npt.NDArray[np.float32]:
    """Inverse of :func:`to_camera`."""
    out: npt.NDArray[np.float32] = np.stack(
        [cam[:, 0] / width, -cam[:, 1] / height, -cam[:, 2] / width], axis=1
    ).astype(np.float32)
    return out


def fit_head(cam: npt.NDArray[np.float64]) -> HeadFit:
    """Umeyama similarity fit of the rigid canonical subset onto camera-space landmarks."""
    src = RIGID_CANONICAL
    dst = cam[RIGID_INDICES]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(src))
    d = np.ones(3)
    if np.linalg.det(u @ vt) < 0:  # a reflection is never a head pose
        d[2] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = float((s0**2).sum(axis=1).mean())
    scale = float((sig * d).sum() / var_s) if var_s > 0 else 0.0
    trans = mu_d - scale * rot @ mu_s
    if scale <= 0:
        return HeadFit(0.0, np.eye(3), trans, math.inf)
    resid = dst - (scale * (rot @ src.T).T + trans)
    rms = float(np.sqrt((resid**2).sum(axis=1).mean()) / (scale * CANONICAL_IOD))
    return HeadFit(scale, rot, trans, rms)


def frontalize(cam: npt.NDArray[np.float64], fit: HeadFit) -> npt.NDArray[np.float64]:
    """Landmarks with head rotation, position and size removed.

    Units are the canonical inter-ocular distance; axes as in the canonical
    model (x to the subject's left, y up, z towards the viewer).
    """
    return ((cam - fit.translation) @ fit.rotation) / (fit.scale * CANONICAL_IOD)


def euler_degrees(rot: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for ``rot = Ry(yaw) @ Rx(-pitch) @ Rz(roll)``.

    Yaw is outermost so that turning the head about the camera's vertical axis
    changes yaw alone. Signs: yaw > 0 the face turns towards the image's right
    (the subject's left), pitch > 0 the face tilts up, roll > 0 the head tilts
    counter-clockwise as seen in the image.
    """
    sin_b = float(np.clip(-rot[1, 2], -1.0, 1.0))
    pitch_down = math.asin(sin_b)
    yaw = math.atan2(rot[0, 2], rot[2, 2])
    roll = math.atan2(rot[1, 0], rot[1, 1])
    return math.degrees(yaw), -math.degrees(pitch_down), math.degrees(roll)
