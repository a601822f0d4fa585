"""Face perception: MediaPipe face mesh -> head pose, gaze, blink and AU-like geometry.

Split in two so the maths can be tested frame by frame without a model:

* :func:`features_from_landmarks` is pure: 478 normalised landmarks in,
  :class:`FaceFeatures` out.
* :class:`FaceAnalyzer` owns one stateful MediaPipe graph (tracking mode) per
  stream and is blocking; the async shell runs it in an executor.

Frames are only ever held in memory; nothing here writes them anywhere.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType, TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from avatar_agent.perception.aus import AU_NAMES, eye_openness, measure_aus
from avatar_agent.perception.face_expression import FER_CLASSES, FaceExpression, face_crop
from avatar_agent.perception.face_geometry import (
    CANONICAL_IOD,
    N_LANDMARKS,
    euler_degrees,
    fit_head,
    frontalize,
    to_camera,
)

log = logging.getLogger(__name__)

# Continuous features only: ``present`` and ``blink`` are flags on FaceFeatures,
# so a per-person baseline over this vector never averages a boolean.
FACE_FEATURE_NAMES: tuple[str, ...] = (
    "yaw",
    "pitch",
    "roll",
    "gaze_x",
    "gaze_y",
    "eye_open",
    "face_size",
    *AU_NAMES,
)

# Classes of the face-expression network, in its order.
EXPRESSION_CLASSES: tuple[str, ...] = FER_CLASSES

DEFAULT_OPEN_EAR = 0.28
"""Typical open-eye aspect ratio, used when the caller has no per-person level yet."""
BLINK_RATIO = 0.6
"""A frame is a blink when the eye aspect ratio falls below this share of the open level."""
MAX_FIT_RESIDUAL = 0.25
"""Rigid-fit RMS (inter-ocular units) above which the landmarks are not a plausible face."""
# Largest iris travel from the eye centre, as a share of the corner-to-corner eye
# width: roughly half the width minus the iris radius horizontally, less vertically
# because the lids cover the iris first.
_GAZE_RANGE_X = 0.28
_GAZE_RANGE_Y = 0.14
_MIN_SIDE_PX = 32  # below this the detector cannot find a face anyway
_R_IRIS, _L_IRIS = 468, 473


def _zero_aus() -> Mapping[str, float]:
    return MappingProxyType(dict.fromkeys(AU_NAMES, 0.0))


@dataclass(frozen=True, slots=True)
class FaceFeatures:
    """One frame's face reading. Angles in degrees, gaze in -1..1, AUs in face-size units.

    Sign conventions: yaw > 0 the face turns to the image's right (the person's left),
    pitch > 0 looks up, roll > 0 tilts counter-clockwise in the image; gaze_x > 0 the
    eyes look to the person's left, gaze_y > 0 up. Every AU grows with its action.
    """

    t: float
    present: bool = False
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    eye_open: float = 0.0
    blink: bool = False
    face_size: float = 0.0
    au: Mapping[str, float] = field(default_factory=_zero_aus)
    # Probabilities over EXPRESSION_CLASSES, where the analyzer runs that network.
    expression: tuple[float, ...] | None = None

    @classmethod
    def absent(cls, t: float) -> FaceFeatures:
        return cls(t=t)

    def vector(self) -> npt.NDArray[np.float32]:
        """Numeric features in :data:`FACE_FEATURE_NAMES` order; never NaN, zeros if absent."""
        if not self.present:
            return np.zeros(len(FACE_FEATURE_NAMES), dtype=np.float32)
        head = [self.yaw, self.pitch, self.roll, self.gaze_x, self.gaze_y,
                self.eye_open, self.face_size]
        aus = [float(self.au.get(name, 0.0)) for name in AU_NAMES]
        v = np.asarray(head + aus, dtype=np.float32)
        return np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)


def _gaze_one_eye(
    p: npt.NDArray[np.float64], outer: int, inner: int, iris: int
) -> tuple[float, float]:
    centre = 0.5 * (p[outer] + p[inner])
    width = float(np.linalg.norm(p[outer, :2] - p[inner, :2]))
    if width <= 0:
        return 0.0, 0.0
    off = p[iris] - centre
    return float(off[0]) / (_GAZE_RANGE_X * width), float(off[1]) / (_GAZE_RANGE_Y * width)


def gaze(p: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Iris centre (R 468, L 473) relative to the mid-point of its eye corners
    (R 33/133, L 263/362), in the frontal frame, averaged over both eyes, clipped to -1..1.
    """
    rx, ry = _gaze_one_eye(p, 33, 133, _R_IRIS)
    lx, ly = _gaze_one_eye(p, 263, 362, _L_IRIS)
    gx = float(np.clip(0.5 * (rx + lx), -1.0, 1.0))
    gy = float(np.clip(0.5 * (ry + ly), -1.0, 1.0))
    return gx, gy


def features_from_landmarks(
    points: npt.NDArray[np.float32],
    width: int,
    height: int,
    t: float,
    *,
    open_level: float | None = None,
) -> FaceFeatures:
    """Features of one face from MediaPipe's normalised landmarks, shape (478, 3).

    ``open_level`` is the person's usual open-eye aspect ratio (see
    :class:`FaceAnalyzer`); without it a population default decides blinks.
    Non-finite or degenerate landmarks give an absent face rather than an error.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (N_LANDMARKS, 3):
        raise ValueError(f"expected ({N_LANDMARKS}, 3) landmarks, got {pts.shape}")
    if width <= 0 or height <= 0 or not np.isfinite(pts).all():
        return FaceFeatures.absent(t)
    cam = to_camera(pts, width, height)
    fit = fit_head(cam)
    if fit.scale <= 0 or not fit.rms_residual < MAX_FIT_RESIDUAL:
        return FaceFeatures.absent(t)
    frontal = frontalize(cam, fit)
    yaw, pitch, roll = euler_degrees(fit.rotation)
    gx, gy = gaze(frontal)
    ear = eye_openness(frontal)
    level = open_level if open_level is not None and open_level > 0 else DEFAULT_OPEN_EAR
    aus = measure_aus(frontal)
    if not all(math.isfinite(v) for v in aus.values()):
        return FaceFeatures.absent(t)
    return FaceFeatures(
        t=t,
        present=True,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        gaze_x=gx,
        gaze_y=gy,
        eye_open=ear,
        blink=ear < BLINK_RATIO * level,
        face_size=fit.scale * CANONICAL_IOD,  # outer-eye-corner distance, px
        au=MappingProxyType(aus),
    )


class FaceAnalyzer:
    """MediaPipe face mesh for ONE stream (its tracker carries state between frames).

    ``analyze`` blocks for a few milliseconds; run it in an executor. It never
    raises on bad input: anything unreadable is reported as an absent face.
    """

    def __init__(self, *, static_image_mode: bool = False, max_faces: int = 3,
                 open_window_s: float = 3.0, find_faces_every_s: float = 1.0,
                 expression: FaceExpression | None = None) -> None:
        import mediapipe as mp  # heavy import, deferred until a stream needs it

        # The face-expression network (shared, loaded once per process): what a network
        # trained on many faces reads in this face, beside the geometry.
        self._expression = expression
        # The mesh tracks ONE face: asking it for several makes it run its detector on
        # every frame, which doubles the cost. Instead a cheap face detector looks for
        # all faces now and then, and every face but the largest is masked out of the
        # frames the mesh sees, so the mesh can only lock onto the largest.
        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image_mode,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._finder: Any = (
            mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=0.5
            )
            if max_faces > 1
            else None
        )
        self._find_every_s = find_faces_every_s
        self._next_find: float | None = None
        self._mask_boxes: list[tuple[int, int, int, int]] = []
        self._open_window_s = open_window_s
        # Recent eye-aspect ratios: their median is this person's "open" level, so
        # narrow or squinting eyes are not read as a permanent blink.
        self._ears: deque[tuple[float, float]] = deque()
        self._warned_layout = False

    def analyze(self, rgb: npt.NDArray[Any], t: float) -> FaceFeatures:
        """Features of the largest face in an RGB uint8 (H, W, 3) frame.

        Typed loosely because decoders (PyAV) return a union of array types; any
        other dtype or layout is logged once and read as an absent face.
        """
        points = self.detect(rgb, t)
        height, width = (int(rgb.shape[0]), int(rgb.shape[1])) if points is not None else (0, 0)
        return self.measure(points, width, height, t, rgb)

    def measure(
        self, points: npt.NDArray[np.float32] | None, width: int, height: int, t: float,
        rgb: npt.NDArray[Any] | None = None,
    ) -> FaceFeatures:
        """The second half of :meth:`analyze`: landmarks from :meth:`detect` to features
        (and, given the frame and an expression network, the expression).

        Split out so a file can be analysed as a pipeline, the mesh of frame N+1
        running while this measures frame N. Call it from one thread, in time order.
        """
        if points is None:
            return FaceFeatures.absent(t)
        feats = features_from_landmarks(points, width, height, t, open_level=self._open_level(t))
        if feats.present:
            self._ears.append((t, feats.eye_open))
            if self._expression is not None and rgb is not None:
                feats = replace(feats, expression=self._read_expression(rgb, points))
        return feats

    def _read_expression(
        self, rgb: npt.NDArray[Any], points: npt.NDArray[np.float32]
    ) -> tuple[float, ...] | None:
        assert self._expression is not None
        h, w = rgb.shape[:2]
        try:
            crop = face_crop(np.asarray(rgb, np.uint8), points[:, :2] * np.array([w, h]))
        except ValueError:  # a degenerate box: this frame goes without an expression
            return None
        return tuple(float(p) for p in self._expression.probs(crop)[0])

    def detect(
        self, rgb: npt.NDArray[Any], t: float | None = None
    ) -> npt.NDArray[np.float32] | None:
        """Normalised (478, 3) landmarks of the largest face, or None.

        `t` (seconds) paces the search for other faces; without it every frame is searched.
        """
        if self._mesh is None:
            raise RuntimeError("FaceAnalyzer is closed")
        if (
            not isinstance(rgb, np.ndarray)
            or rgb.dtype != np.uint8
            or rgb.ndim != 3
            or rgb.shape[2] != 3
        ):
            if not self._warned_layout:
                self._warned_layout = True
                log.warning("face analysis expects uint8 (H, W, 3) RGB, got %s %s",
                            getattr(rgb, "dtype", type(rgb)), getattr(rgb, "shape", ""))
            return None
        if min(rgb.shape[0], rgb.shape[1]) < _MIN_SIDE_PX:
            return None
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        try:
            if self._finder is not None and (
                t is None or self._next_find is None or t >= self._next_find
            ):
                self._mask_boxes = self._smaller_faces(rgb)
                self._next_find = None if t is None else t + self._find_every_s
            frame = np.ascontiguousarray(rgb)
            if self._mask_boxes:
                frame = frame.copy()
                for x0, y0, x1, y1 in self._mask_boxes:
                    frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1].mean(axis=(0, 1), dtype=np.float32)
            result = self._mesh.process(frame)
        except Exception:  # a broken frame must degrade this call, not end it
            log.exception("face mesh failed on a %dx%d frame", width, height)
            return None
        faces = result.multi_face_landmarks or []
        if not faces:
            return None
        points = max(
            (np.array([(p.x, p.y, p.z) for p in f.landmark], dtype=np.float32) for f in faces),
            key=lambda a: _box_area(a, width, height),
        )
        return points if points.shape == (N_LANDMARKS, 3) else None

    def _smaller_faces(self, rgb: npt.NDArray[np.uint8]) -> list[tuple[int, int, int, int]]:
        """Pixel boxes (a little enlarged) of every detected face but the largest."""
        height, width = int(rgb.shape[0]), int(rgb.shape[1])
        found = self._finder.process(np.ascontiguousarray(rgb)).detections or []
        boxes = []
        for d in found:
            b = d.location_data.relative_bounding_box
            pad_w, pad_h = 0.5 * b.width, 0.6 * b.height
            x0, y0 = (b.xmin - pad_w) * width, (b.ymin - pad_h) * height
            x1, y1 = (b.xmin + b.width + pad_w) * width, (b.ymin + b.height + pad_h) * height
            box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
            boxes.append(((box[2] - box[0]) * (box[3] - box[1]), box))
        boxes.sort(reverse=True)
        return [box for _, box in boxes[1:]]

    def _open_level(self, t: float) -> float | None:
        while self._ears and (self._ears[0][0] < t - self._open_window_s or self._ears[0][0] > t):
            self._ears.popleft()
        if not self._ears:
            return None
        return float(np.median([e for _, e in self._ears]))

    def reset(self) -> None:
        """Forget the stream so far, for another one: the mesh's graph starts a new
        run (no tracked face carried over), the other faces' boxes and the eye-opening
        history are dropped."""
        if self._mesh is not None:
            self._mesh.reset()
        if self._finder is not None:
            self._finder.reset()
        self._next_find = None
        self._mask_boxes = []
        self._ears.clear()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        if self._finder is not None:
            self._finder.close()
            self._finder = None

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _box_area(points: npt.NDArray[np.float32], width: int, height: int) -> float:
    span = points[:, :2].max(axis=0) - points[:, :2].min(axis=0)
    return float(span[0] * width * span[1] * height)
