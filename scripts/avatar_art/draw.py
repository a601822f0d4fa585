"""Frame layout, drawing primitives and the lighting model shared by every part.

Everything is modelled in frame pixels of a 640x480 view, rendered at SUPER times
the resolution and averaged down, so edges are anti-aliased.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float32]
SUPER = 3
W, H = 640, 480
CX = 320.0
HEAD_BOX = (164, 16, 476, 424)  # x0, y0, x1, y1 of the head layer in the frame
BODY_TOP = 300
EYES_BOX = (250, 146, 390, 200)
BROWS_BOX = (258, 146, 382, 172)
MOUTH_BOX = (244, 222, 396, 342)
PART_X = CX - 28.0
EYE_L, EYE_R = (CX - 36.0, 178.0), (CX + 36.0, 178.0)
EYE_HALF = 18.5  # half the corner-to-corner width
IRIS_R = 7.2
BLINK_LEVELS = 12
MOUTH_LEVELS = 24
JAW_DROP = 15.0  # chin travel at mouth_open = 1, frame px
STOMION = 259.0  # where the lips meet
MOUTH_HALF = 28.0
LIGHT = np.array([-0.55, -0.5, 0.67])
FILL = np.array([0.55, -0.1, 0.83])
SKIN = (0.88, 0.68, 0.57)
HAIR = (0.20, 0.12, 0.08)


def lin(c: tuple[float, float, float]) -> NDArray[np.float32]:
    return (np.array(c, np.float32) ** 2.2).astype(np.float32)


def grid(box: tuple[int, int, int, int]) -> tuple[F, F]:
    x0, y0, x1, y1 = box
    xs = x0 + (np.arange((x1 - x0) * SUPER, dtype=np.float32) + 0.5) / SUPER - 0.5
    ys = y0 + (np.arange((y1 - y0) * SUPER, dtype=np.float32) + 0.5) / SUPER - 0.5
    gx, gy = np.meshgrid(xs, ys)
    return gx.astype(np.float32), gy.astype(np.float32)


def gauss(x: F, y: F, cx: float, cy: float, sx: float, sy: float) -> F:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2)).astype(np.float32)


def arch(v: F, power: float = 1.0) -> F:
    """sin(pi v) on 0..1 raised to power: a bump that is 0 at both ends."""
    return (np.maximum(np.sin(np.pi * np.clip(v, 0.0, 1.0)), 0.0) ** power).astype(np.float32)


def sstep(e0: float, e1: float, v: F) -> F:
    t = np.clip((v - e0) / (e1 - e0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def catmull(points: list[tuple[float, float]], closed: bool, n: int = 16) -> NDArray[np.float64]:
    p = np.array(points, np.float64)
    p = np.vstack([p[-1], p, p[0], p[1]]) if closed else np.vstack([p[0], p, p[-1]])
    out = []
    for i in range(1, len(p) - 2):
        for t in np.linspace(0.0, 1.0, n, endpoint=False):
            a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
            out.append(0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t * t
                              + (-a + 3 * b - 3 * c + d) * t ** 3))
    if not closed:
        out.append(p[-2])
    return np.array(out)


def poly_sdf(poly: NDArray[np.float64], box: tuple[int, int, int, int]) -> F:
    """Signed distance (frame px, negative inside) to a closed polygon, on the box grid."""
    x0, y0, x1, y1 = box
    shape = ((y1 - y0) * SUPER, (x1 - x0) * SUPER)
    pts = ((poly - (x0, y0) + 0.5) * SUPER - 0.5) * 16.0
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [pts.astype(np.int32)], 255, cv2.LINE_8, shift=4)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(255 - mask, cv2.DIST_L2, 5)
    return ((outside - inside) / SUPER).astype(np.float32)


def cover(sdf: F, soft: float = 0.7) -> F:
    return np.clip(0.5 - sdf / soft, 0.0, 1.0).astype(np.float32)


def blur(img: F, sigma: float) -> F:
    return cv2.GaussianBlur(img, (0, 0), sigma * SUPER).astype(np.float32)


def noise(shape: tuple[int, int], sigma: float, seed: int) -> F:
    rng = np.random.default_rng(seed)
    n = blur(rng.standard_normal(shape).astype(np.float32), sigma)
    return (n / (n.std() + 1e-6)).astype(np.float32)


def cast_shadow(height: F, reach: float = 14.0) -> F:
    """0..1 shadow where the height field blocks the key light (a short horizon test)."""
    lxy = LIGHT[:2] / np.linalg.norm(LIGHT[:2])
    rise = LIGHT[2] / np.linalg.norm(LIGHT[:2])
    block = np.full_like(height, -1e3)
    h, w = height.shape
    for d in np.arange(1.0, reach, 1.0):
        m = np.float32([[1, 0, -lxy[0] * d * SUPER], [0, 1, -lxy[1] * d * SUPER]])
        ahead = cv2.warpAffine(height, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        np.maximum(block, ahead - height - d * rise, out=block)
    return blur(sstep(-0.5, 2.5, block), 0.8)


def shade(height: F, albedo: F, spec: float = 0.0, gloss: float = 30.0,
          ao: float = 0.04, wrap: float = 0.2, shadows: bool = False) -> F:
    """Lit linear RGB of a height field (frame px) with the given linear albedo."""
    gy, gx = np.gradient(height, 1.0 / SUPER)
    n = np.dstack([-gx, -gy, np.ones_like(height)])
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    key_l = LIGHT / np.linalg.norm(LIGHT)
    fill_l = FILL / np.linalg.norm(FILL)
    ndl = n @ key_l.astype(np.float32)
    key = np.clip((ndl + wrap) / (1.0 + wrap), 0.0, 1.0)
    if shadows:
        key = key * (1.0 - 0.6 * cast_shadow(height))
    fill = np.clip(n @ fill_l.astype(np.float32), 0.0, 1.0)
    occl = np.clip(1.0 - ao * np.maximum(blur(height, 6.0) - height, 0.0), 0.45, 1.0)
    # Light scattered inside skin reddens the half-shadow band.
    warm = np.dstack([np.ones_like(key), 0.82 + 0.18 * key, 0.75 + 0.25 * key])
    light = (1.1 * key[..., None] * warm + 0.12 * fill[..., None]
             * np.array([0.9, 0.95, 1.05], np.float32) + 0.05) * occl[..., None]
    col = albedo * light
    if spec > 0.0:
        half = key_l + np.array([0.0, 0.0, 1.0])
        half /= np.linalg.norm(half)
        col = col + spec * (np.clip(n @ half.astype(np.float32), 0.0, 1.0) ** gloss)[..., None]
    return col.astype(np.float32)


def over(dst: F, dst_a: F, src: F, src_a: F) -> None:
    """Straight-alpha src over dst, in place."""
    dst *= (1.0 - src_a)[..., None]
    dst += src * src_a[..., None]
    dst_a *= 1.0 - src_a
    dst_a += src_a


def down(img: F) -> F:
    h, w = img.shape[:2]
    return cv2.resize(img, (w // SUPER, h // SUPER), interpolation=cv2.INTER_AREA)


def to_u8(lin_rgb: F) -> NDArray[np.uint8]:
    return np.clip(np.power(np.clip(lin_rgb, 0, 1), 1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8)
