"""Draw the default avatar (original procedural art) into assets/avatars/default.

Everything is modelled in frame pixels of a 640x480 view, rendered at SUPER times
the resolution and averaged down, so edges are anti-aliased. Skin, lips, hair
and cloth are shaded from height fields with a soft key light, a fill light and
ambient occlusion; this is what gives the face the depth a face detector expects.

Outputs (sRGB; RGBA layers are premultiplied):
  background.png   RGB wall behind the person
  body.png         RGBA blazer and blouse, lifted by breath
  head.png         RGBA head, hair, neck and chest at rest (no brows, no irises)
  head_depth.png   grey: distance toward the viewer, for head-turn parallax
  eyes.png         RGB atlas: the eye strip at BLINK_LEVELS lid positions
  eyes_ball.png    R: where the eyeball shows, G: its shading, per lid position
  iris.png         RGBA one iris (pupil, limbus, catch light)
  brows.png        RGBA both eyebrows, a separate part so they can move
  mouth.png        RGBA atlas: lips, mouth and chin at MOUTH_LEVELS jaw openings
  rig.json         where each part sits and how it moves

Run: .venv/bin/python scripts/build_avatar.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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
REPO = Path(__file__).resolve().parents[1]


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


# ---------------------------------------------------------------- geometry


def mirror(right: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A closed outline from its right half (dx from the centre line, y), top to bottom."""
    pts = [(CX + dx, y) for dx, y in right]
    pts += [(CX - dx, y) for dx, y in reversed(right) if dx > 0]
    return pts


FACE = [(0, 70), (40, 73), (68, 90), (83, 118), (88, 150), (88, 180), (85, 206), (78, 232),
        (65, 258), (47, 281), (27, 297), (0, 304)]
HAIR_OUT = [(0, 42), (35, 45), (64, 55), (88, 72), (105, 96), (114, 126), (118, 160),
            (119, 200), (117, 236), (113, 266), (107, 289), (96, 299), (72, 298), (50, 292),
            (0, 292)]
FACE_WINDOW = [(CX - 84, 150), (CX - 72, 122), (CX - 50, 104), (CX - 22, 98), (CX + 8, 101),
               (CX + 38, 112), (CX + 62, 129), (CX + 78, 150), (CX + 84, 170), (CX + 85, 200),
               (CX + 82, 236),
               (CX + 79, 270), (CX + 78, 330), (CX - 78, 330), (CX - 79, 270),
               (CX - 82, 236), (CX - 85, 200)]
NECK = [(CX - 47, 240), (CX + 47, 240), (CX + 46, 290), (CX + 47, 318), (CX + 54, 338),
        (CX + 70, 360), (CX + 100, 424), (CX - 100, 424), (CX - 70, 360), (CX - 52, 338),
        (CX - 47, 318), (CX - 46, 290)]


def jaw_weight(x: F, y: F) -> F:
    """How much of the jaw's drop a point of the lower face follows (0..1)."""
    return ((1.0 - sstep(10.0, 72.0, np.abs(x - CX))) * sstep(STOMION - 6.0, STOMION + 8.0, y))


def eye_curves(x: F, ex: float, ey: float, side: float, blink: float) -> tuple[F, F, F, F]:
    """t across the eye (inner corner 0 → outer 1) and the upper-lid, lower-lid, crease y."""
    t = (side * (x - ex) / EYE_HALF + 1.0) * 0.5
    tc = np.clip(t, 0.0, 1.0)
    base = ey + 1.2 - 2.0 * tc
    up = base - 8.8 * arch(tc ** 0.85, 0.85)
    low = base + 5.0 * arch(tc ** 1.2, 0.9)
    closed = base + 3.0 * arch(tc ** 1.2)
    crease = up - 5.0 - 1.8 * arch(tc)
    lid = (1.0 - blink) * up + blink * closed
    return t.astype(np.float32), lid, low, crease


def mouth_curves(x: F, opening: float) -> dict[str, F]:
    half = MOUTH_HALF - 2.5 * opening
    jaw = JAW_DROP * opening
    dx = x - CX
    u = np.clip(1.0 - (dx / half) ** 2, 0.0, 1.0)
    stom = STOMION - 3.4 * (dx / MOUTH_HALF) ** 4 + 0.4 * u
    prof = u ** 0.9
    upper_out = STOMION - 8.2 * np.clip(1.0 - (dx / (half + 0.5)) ** 2, 0, 1) ** 0.55 \
        + 1.5 * np.exp(-((dx / 3.2) ** 2)) - 3.2 * (dx / MOUTH_HALF) ** 4
    u2 = np.clip(1.0 - (dx / (half + 1.5)) ** 2, 0.0, 1.0)
    lower_out = stom + (9.8 - 1.8 * opening) * u2 ** 0.62 + jaw * u2 ** 0.5
    return {"stom": stom.astype(np.float32), "upper_out": upper_out.astype(np.float32),
            "upper_in": (stom - 0.5 - 2.2 * opening * prof).astype(np.float32),
            "lower_in": (stom + 0.5 + jaw * prof).astype(np.float32),
            "lower_out": lower_out.astype(np.float32), "half": np.float32(half) + 0 * x}


# ---------------------------------------------------------------- textures


def lic(base: F, vx: F, vy: F, steps: int, step: float) -> F:
    """Line-integral convolution: smear noise along the hair flow into strands."""
    h, w = base.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    acc = np.zeros_like(base)
    for k in range(-steps, steps + 1):
        mx = gx + vx * (k * step * SUPER)
        my = gy + vy * (k * step * SUPER)
        acc += cv2.remap(base, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    acc /= 2 * steps + 1
    return ((acc - acc.mean()) / (acc.std() + 1e-6)).astype(np.float32)


class Textures:
    """Noise fields over the whole head box, so a re-rendered crop matches exactly."""

    def __init__(self) -> None:
        x, y = grid(HEAD_BOX)
        shape = x.shape
        self.skin = noise(shape, 5.0, 1)
        self.pores = noise(shape, 0.35, 2)
        # Hair leaves the side parting sideways and bends down as it wraps the
        # head; on the sides it simply falls.
        away = x - PART_X
        bend = (np.abs(away) / 55.0) ** 1.3 + 0.12 + sstep(60.0, 130.0, y) * 2.0
        fall = sstep(120.0, 230.0, y)
        vx = np.sign(away) * (1.0 - 0.9 * fall)
        vy = bend * (1.0 - fall) + 3.0 * fall
        norm = np.sqrt(vx * vx + vy * vy) + 1e-6
        vx, vy = vx / norm, vy / norm
        rng = np.random.default_rng(3)
        fine = blur(rng.standard_normal(shape).astype(np.float32), 0.35)
        coarse = blur(rng.standard_normal(shape).astype(np.float32), 1.6)
        self.hair_fine = lic(fine, vx, vy, 14, 0.8)
        self.hair_coarse = lic(coarse, vx, vy, 16, 1.6)
        self.hair_dir = (vx, vy)

    def crop(self, field: F, box: tuple[int, int, int, int]) -> F:
        x0, y0 = (box[0] - HEAD_BOX[0]) * SUPER, (box[1] - HEAD_BOX[1]) * SUPER
        return field[y0:y0 + (box[3] - box[1]) * SUPER, x0:x0 + (box[2] - box[0]) * SUPER]


# ---------------------------------------------------------------- head


def face_height(x: F, y: F) -> F:
    dx = x - CX
    e = np.clip(1.0 - (dx / 94.0) ** 2 - ((y - 182.0) / 134.0) ** 2, 0.0, 1.0)
    h = 75.0 * e ** 0.5
    for s in (-1.0, 1.0):
        ex = CX + s * 36.0
        h += -10.0 * gauss(x, y, ex, 175.0, 16.0, 10.0)  # eye socket
        h += 3.5 * gauss(x, y, CX + s * 33.0, 159.0, 17.0, 5.0)  # brow ridge
        h += 5.5 * gauss(x, y, CX + s * 52.0, 204.0, 17.0, 14.0)  # cheekbone
        h -= 3.0 * gauss(x, y, CX + s * 66.0, 238.0, 10.0, 14.0)  # below the cheekbone
        h -= 2.5 * gauss(x, y, CX + s * 80.0, 150.0, 8.0, 22.0)  # temple
        h += 4.5 * gauss(x, y, CX + s * 12.5, 228.0, 5.0, 4.5)  # nose wing
        h -= 3.5 * gauss(x, y, CX + s * 6.8, 232.5, 2.6, 1.5)  # nostril
        h -= 1.4 * gauss(x, y, CX + s * 25.0, 244.0, 3.0, 9.0)  # smile fold
    ramp = np.clip((y - 168.0) / 58.0, 0.0, 1.0)
    bridge = sstep(150.0, 176.0, y) * (y < 229.0)
    h += (1.5 + 10.0 * ramp ** 1.6) * np.exp(-((dx / (5.0 + 2.5 * ramp)) ** 2)) * bridge
    h += 13.0 * np.exp(-((dx / 7.5) ** 2)) * gauss(x, y, CX, 229.0, 99.0, 3.0) * (y >= 229.0)
    h += 6.0 * gauss(x, y, CX, 223.0, 7.5, 6.0)  # nose tip
    h -= 2.5 * gauss(x, y, CX, 237.0, 9.0, 2.5)  # under the nose
    h += 0.9 * (gauss(x, y, CX - 3.2, 243.0, 1.4, 4.5) + gauss(x, y, CX + 3.2, 243.0, 1.4, 4.5))
    h += 6.0 * gauss(x, y, CX, 258.0, 30.0, 15.0)  # teeth arch under the lips
    h -= 2.2 * gauss(x, y, CX, 277.0, 15.0, 3.5)  # below the lower lip
    h += 5.0 * gauss(x, y, CX, 293.0, 19.0, 9.0)  # chin
    return h.astype(np.float32)


def skin_albedo(x: F, y: F, tex: F) -> F:
    red = np.zeros_like(x)
    for s in (-1.0, 1.0):
        red += 0.9 * gauss(x, y, CX + s * 50.0, 214.0, 15.0, 11.0)
        red -= 0.5 * gauss(x, y, CX + s * 36.0, 187.0, 12.0, 3.5)  # under-eye
    red += 0.6 * gauss(x, y, CX, 222.0, 8.0, 7.0) + 0.4 * gauss(x, y, CX, 296.0, 14.0, 8.0)
    base = lin(SKIN) * (1.0 + 0.035 * tex)[..., None]
    tint = np.dstack([1.0 + 0.02 * red, 1.0 - 0.10 * red, 1.0 - 0.10 * red])
    return (base * tint).astype(np.float32)


def render_head(box: tuple[int, int, int, int], tx: Textures, opening: float = 0.0,
                blink: float = 0.0) -> dict[str, F]:
    """Linear RGB + alpha of the head at SUPER resolution over box."""
    x, y = grid(box)
    jaw = JAW_DROP * opening
    wy = y - jaw * jaw_weight(x, y)  # where a lower-face point sits at rest
    rgb = np.zeros(x.shape + (3,), np.float32)
    alpha = np.zeros(x.shape, np.float32)
    hair_out = poly_sdf(catmull(mirror(HAIR_OUT), True), box)
    coarse, fine = tx.crop(tx.hair_coarse, box), tx.crop(tx.hair_fine, box)
    hair_h = 92.0 * np.sqrt(np.clip(1 - ((x - CX) / 128) ** 2 - ((y - 170) / 150) ** 2, 0.02, 1))
    hair_h = hair_h + 0.8 * coarse + 0.25 * fine
    hair_alb = lin(HAIR) * np.clip(0.85 + 0.22 * fine + 0.22 * coarse, 0.3, 1.6)[..., None]
    hair_rgb = shade(hair_h, hair_alb, spec=0.05, gloss=10.0, ao=0.0, wrap=0.2)
    hair_rgb *= (1.0 + 0.25 * np.clip(coarse, -1, 2))[..., None]
    ring = np.sqrt(((x - CX + 10) / 120.0) ** 2 + ((y - 180.0) / 132.0) ** 2)
    sheen = np.exp(-(((ring - 0.84) / 0.07) ** 2)) * sstep(170.0, 90.0, y)
    sheen *= (1.2 - 0.6 * sstep(CX - 80, CX + 100, x)) * np.clip(1 + 0.8 * fine, 0, 2)
    hair_rgb += (0.05 * sheen)[..., None] * lin((1.0, 0.85, 0.7))
    edge_rough = np.clip(0.8 * coarse + 0.15 * fine, -2.0, 2.0)
    # The bob's ends thin out strand by strand instead of being cut straight.
    tip = 3.0 * coarse + 2.0 * np.clip(fine, -1.5, 1.5)
    ends = sstep(298.0 + tip, 291.0 + tip, y)
    part = np.exp(-(((x - PART_X) / 0.7) ** 2)) * sstep(50.0, 64.0, y) * sstep(96.0, 86.0, y)
    hair_rgb = hair_rgb * (1.0 - 0.4 * blur(part, 1.0))[..., None] + \
        (0.12 * part)[..., None] * lin(SKIN)
    back_cov = cover(hair_out + edge_rough, 1.4) * ends
    over(rgb, alpha, hair_rgb * 0.55, back_cov)
    depth = (hair_h - 40.0) * back_cov
    # neck and upper chest
    face_poly = catmull(mirror(FACE), True)
    fy = face_poly[:, 1] + jaw * jaw_weight(face_poly[:, 0:1].astype(np.float32),
                                            face_poly[:, 1:2].astype(np.float32))[:, 0]
    face_sdf = poly_sdf(np.stack([face_poly[:, 0], fy], 1), box)
    face_cov = cover(face_sdf)
    neck_h = 44.0 * np.sqrt(np.clip(1 - ((x - CX) / 64.0) ** 2, 0.0, 1.0))
    neck_h -= 6.0 * gauss(x, y, CX, 350.0, 8.0, 14.0)  # hollow between the collarbones
    neck_alb = skin_albedo(x, y, tx.crop(tx.skin, box)) * np.array([0.93, 0.9, 0.88], np.float32)
    neck_rgb = shade(neck_h, neck_alb, ao=0.0)
    shifted = np.roll(face_cov, int(12 * SUPER), axis=0)
    shadow = np.clip(blur(shifted, 4.0) * 1.3, 0, 1) * 0.75 + 0.2 * sstep(340, 260, y)
    neck_rgb *= (1.0 - shadow)[..., None]
    neck_cov = cover(poly_sdf(np.array(NECK, np.float64), box), 1.0)
    over(rgb, alpha, neck_rgb, neck_cov)
    depth += (neck_h - 10.0 - depth) * neck_cov
    # eyeballs
    ball = np.zeros_like(x)
    ball_shade = np.zeros_like(x)
    lash = np.zeros_like(x)
    lid_band = np.zeros_like(x)
    crease_band = np.zeros_like(x)
    for (ex, ey), side in ((EYE_L, -1.0), (EYE_R, 1.0)):
        t, lid, low, crease = eye_curves(x, ex, ey, side, blink)
        inside = np.minimum(y - lid, low - y)
        inside = np.where((t > 0) & (t < 1), inside, -5.0)
        vis = cover(-inside, 0.6)
        ball = np.maximum(ball, vis)
        sh = (1.0 - 0.55 * np.exp(-np.maximum(y - lid, 0.0) / 2.4))
        sh *= 1.0 - 0.45 * np.abs(2 * t - 1) ** 2.5
        sh *= 0.95 if side < 0 else 0.8
        ball_shade = np.where(vis > 0, sh, ball_shade)
        near = (t > -0.08) & (t < 1.08)
        thick = 1.2 + 1.8 * np.clip(t, 0, 1) ** 1.5
        lash = np.maximum(lash, near * cover(np.abs(y - lid + thick * 0.5) - thick * 0.5, 0.7))
        lash = np.maximum(lash, 0.35 * near * cover(np.abs(y - low - 0.4) - 0.35, 0.6))
        lid_band = np.maximum(lid_band,
                              near * sstep(1.0, 5.0, lid - y) * sstep(crease - 4, crease, y))
        crease_band = np.maximum(crease_band, near * np.exp(-(((y - crease) / 1.3) ** 2))
                                 * arch(t * 1.05, 0.5))
        rng = np.random.default_rng(7 if side < 0 else 8)
        lashes = np.zeros(x.shape, np.uint8)
        for tt in np.linspace(0.15, 1.04, 24):
            px = ex + side * EYE_HALF * (2 * tt - 1)
            py = float(eye_curves(np.array([px], np.float32), ex, ey, side, blink)[1][0])
            # Lashes fan outward; a closing lid turns them from up to down.
            ang = np.radians(-100 + side * (35 + 40 * tt))
            ln = 2.2 + 3.0 * tt + rng.uniform(-0.4, 0.4)
            dxl, dyl = np.cos(ang) * ln, np.sin(ang) * ln * (1 - 2 * blink)
            p0 = ((px - box[0] + 0.5) * SUPER - 0.5, (py - box[1] + 0.5) * SUPER - 0.5)
            p1 = (p0[0] + dxl * SUPER, p0[1] + dyl * SUPER)
            cv2.line(lashes, (int(p0[0] * 16), int(p0[1] * 16)),
                     (int(p1[0] * 16), int(p1[1] * 16)), 255, 1, cv2.LINE_AA, shift=4)
        lash = np.maximum(lash, lashes.astype(np.float32) / 255.0 * 0.9)
    sclera = lin((0.93, 0.89, 0.87)) * 0.92
    pink = lin((0.86, 0.6, 0.58))
    ball_rgb = np.broadcast_to(sclera, x.shape + (3,)).copy()
    for (ex, ey), side in ((EYE_L, -1.0), (EYE_R, 1.0)):
        k = gauss(x, y, ex - side * (EYE_HALF - 1.5), ey + 1.0, 2.2, 2.0)
        ball_rgb = ball_rgb * (1 - k[..., None]) + pink * k[..., None]
    over(rgb, alpha, ball_rgb * ball_shade[..., None], ball)
    # face
    fh = face_height(x, wy)
    mc = mouth_curves(x, opening)
    dx = x - CX
    in_x = np.clip(1.0 - (dx / mc["half"]) ** 2, 0.0, 1.0)
    up_f = np.clip((y - mc["upper_out"]) / np.maximum(mc["upper_in"] - mc["upper_out"], 0.3), 0, 1)
    lo_f = np.clip((y - mc["lower_in"]) / np.maximum(mc["lower_out"] - mc["lower_in"], 0.3), 0, 1)
    upper_cov = cover(np.maximum(mc["upper_out"] - y, y - mc["upper_in"]), 0.9)
    lower_cov = cover(np.maximum(mc["lower_in"] - y, y - mc["lower_out"]), 1.0)
    cav_cov = cover(np.maximum(np.maximum(mc["upper_in"] - y, y - mc["lower_in"]),
                               np.abs(dx) - mc["half"] - 0.6), 0.6)
    fh += upper_cov * 2.6 * (1 - up_f) ** 0.35 * up_f ** 0.2 * in_x ** 0.3
    fh += lower_cov * 4.0 * arch(lo_f ** 0.75, 0.6) * in_x ** 0.3
    alb = skin_albedo(x, wy, tx.crop(tx.skin, box))
    lips = lin((0.76, 0.42, 0.44))
    lip_cov = np.maximum(upper_cov * 0.92, lower_cov)
    alb = alb * (1 - lip_cov[..., None]) + lips * lip_cov[..., None] * \
        np.where(upper_cov > lower_cov, 0.9, 1.0)[..., None]
    shadow_tint = np.array([0.55, 0.42, 0.4], np.float32)
    alb *= 1.0 - (0.2 * lid_band)[..., None] * np.array([0.8, 0.95, 0.9], np.float32)
    alb *= 1.0 - (0.5 * crease_band * (1 - 0.7 * blink))[..., None] * (1 - shadow_tint * 0.3)
    for (ex, ey), side in ((EYE_L, -1.0), (EYE_R, 1.0)):
        corner = gauss(x, y, ex - side * 16.0, ey - 3.0, 4.5, 6.0)
        under = gauss(x, y, ex + side * 2.0, ey + 9.5, 12.0, 2.2)
        alb *= 1.0 - (0.22 * corner + 0.08 * under)[..., None] * (1 - shadow_tint * 0.5)
    alb *= 1.0 - (0.92 * lash)[..., None]
    for s in (-1.0, 1.0):
        nos = gauss(x, wy, CX + s * 6.4, 232.8, 2.5, 1.3)
        alb *= 1.0 - (0.75 * np.clip(nos * 1.6, 0, 1))[..., None]
        ring = np.sqrt(((x - CX - s * 12.0) / 6.2) ** 2 + ((wy - 229.0) / 5.6) ** 2)
        crease = np.exp(-(((ring - 1.0) / 0.16) ** 2)) * sstep(235.0, 226.0, wy)
        alb *= 1.0 - (0.22 * crease)[..., None]
    alb *= (1.0 + 0.05 * tx.crop(tx.pores, box))[..., None]
    face_rgb = shade(fh, alb, shadows=True)
    # Skin sheen on the nose tip and the lit forehead, a moist glint on the lower lip.
    sheen = 0.02 + 0.05 * gauss(x, y, CX, 223.0, 5.0, 5.0) \
        + 0.03 * gauss(x, y, CX - 20, 110, 25, 14)
    face_rgb += (0.5 * sheen)[..., None] * np.clip(face_rgb.mean(axis=2, keepdims=True) * 3, 0, 1)
    glint = lower_cov * gauss(x, y, CX - 5, float(STOMION + 3 + jaw), 7, 1.8)
    face_rgb += (0.05 * glint)[..., None]
    # inside of the mouth
    gap = mc["lower_in"] - mc["upper_in"]
    ty = y - mc["upper_in"]
    cav = np.broadcast_to(lin((0.22, 0.07, 0.07)) * 0.45, x.shape + (3,)).copy()
    cav *= (0.6 + 0.4 * sstep(0.0, 6.0, ty) * in_x)[..., None]
    teeth_h = np.clip(0.5 * gap - 0.8, 0.0, 4.2)
    teeth = cover(ty - teeth_h, 0.8) * cover(np.abs(dx) - mc["half"] * 0.78, 1.5) \
        * sstep(0.0, 1.0, teeth_h)
    tooth = lin((0.93, 0.9, 0.84)) * 0.8
    sep = 1.0 - 0.25 * np.exp(-((((dx + 2.3) % 4.6) - 2.3) / 0.6) ** 2) * (np.abs(dx) < 9)
    tooth_rgb = tooth * ((1.0 - 0.75 * (dx / mc["half"]) ** 2) * sep
                         * (0.55 + 0.45 * sstep(0.0, 1.5, ty)))[..., None]
    cav = cav * (1 - teeth[..., None]) + tooth_rgb * teeth[..., None]
    by = mc["lower_in"] - y
    low_h = np.clip(0.3 * (gap - 6.0), 0.0, 2.5)
    lteeth = cover(by - low_h, 0.8) * cover(np.abs(dx) - mc["half"] * 0.5, 1.5) * (low_h > 0)
    cav = cav * (1 - lteeth[..., None]) + (tooth * 0.45) * lteeth[..., None]
    tongue = gauss(x, y, CX, mc["lower_in"].max() - 2.5, 9.0, 3.0) * sstep(6.0, 12.0, gap)
    cav = cav * (1 - tongue[..., None]) + lin((0.5, 0.18, 0.18)) * 0.5 * tongue[..., None]
    face_rgb = face_rgb * (1 - cav_cov[..., None]) + cav * cav_cov[..., None]
    corner_y = float(STOMION - 3.4)
    for s_ in (-1.0, 1.0):
        dent = gauss(x, y, CX + s_ * (float(mc["half"].max()) + 0.8), corner_y, 1.6, 1.2)
        face_rgb *= (1.0 - 0.45 * dent)[..., None]
    inner = np.exp(-np.maximum(y - mc["lower_in"], 0) / 1.2) * lower_cov \
        + np.exp(-np.maximum(mc["upper_in"] - y, 0) / 1.0) * upper_cov
    face_rgb *= (1.0 - 0.35 * np.clip(inner, 0, 1) * sstep(0.5, 3.0, gap))[..., None]
    # shadows from the front hair
    window = poly_sdf(catmull(FACE_WINDOW, True, 10), box)
    front_hair = cover(hair_out + edge_rough, 1.4) * cover(-window - coarse, 1.2) * ends
    hs = blur(np.roll(np.roll(front_hair, 5 * SUPER, 0), 3 * SUPER, 1), 3.0)
    face_rgb *= (1.0 - 0.4 * hs - 0.3 * blur(front_hair, 2.5))[..., None]
    over(rgb, alpha, face_rgb, face_cov * (1.0 - ball))
    over(rgb, alpha, hair_rgb, front_hair)
    depth += (fh - depth) * face_cov
    depth += (hair_h - depth) * front_hair
    return {"rgb": rgb, "alpha": alpha, "ball": ball, "ball_shade": ball_shade, "depth": depth}


def build_iris() -> tuple[F, F]:
    """Linear RGB and coverage of one iris, centred in a square sprite."""
    half = int(np.ceil(IRIS_R)) + 2
    box = (-half, -half, half + 1, half + 1)
    x, y = grid(box)
    r = np.sqrt(x * x + y * y) / IRIS_R
    ang = np.arctan2(y, x)
    rng = np.random.default_rng(11)
    spokes = np.zeros_like(r)
    for k in range(1, 60):
        spokes += rng.standard_normal() * np.cos(k * ang + rng.uniform(0, 6.3)) / np.sqrt(k)
    spokes /= spokes.std()
    inner, outer = lin((0.52, 0.36, 0.20)), lin((0.28, 0.18, 0.10))
    mix = sstep(0.35, 0.95, r)[..., None]
    col = inner * (1 - mix) + outer * mix
    col = col * (1.0 + 0.22 * spokes * sstep(0.3, 0.5, r))[..., None]
    col = col * (1.0 + 0.25 * np.exp(-(((r - 0.52) / 0.07) ** 2)))[..., None]
    col = col * (1.0 - 0.75 * sstep(0.76, 1.0, r))[..., None]
    pupil = cover((r - 0.38) * IRIS_R, 0.6)
    col = col * (1 - pupil[..., None]) + lin((0.03, 0.025, 0.025)) * pupil[..., None]
    glint = gauss(x, y, -0.32 * IRIS_R, -0.38 * IRIS_R, 0.55, 0.55)
    col = col + np.clip(glint * 1.4, 0, 1)[..., None] * 0.85
    return down(col.astype(np.float32)), down(cover((r - 1.0) * IRIS_R, 0.7))


# ---------------------------------------------------------------- body and room

BODY = [(0, 334), (48, 334), (84, 344), (130, 354), (176, 366), (206, 384), (226, 410),
        (238, 444), (245, 490), (248, 540), (0, 540)]
BLOUSE = [(CX - 44, 330), (CX + 44, 330), (CX + 30, 404), (CX, 462), (CX - 30, 404)]
SKIN_V = [(CX - 33, 330), (CX + 33, 330), (CX + 16, 380), (CX, 408), (CX - 16, 380)]


def lapel(side: float) -> NDArray[np.float64]:
    pts = [(44, 334), (74, 344), (86, 352), (72, 372), (90, 392), (60, 440), (34, 492),
           (20, 492), (18, 452), (30, 404)]
    return np.array([(CX + side * dx, y) for dx, y in pts], np.float64)


def render_body(tx_seed: int = 5) -> tuple[F, F]:
    box = (0, BODY_TOP, W, H)
    x, y = grid(box)
    dx = x - CX
    body_sdf = poly_sdf(catmull(mirror(BODY), True, 8), box)
    body = cover(body_sdf, 1.0)
    h = 80.0 * np.sqrt(np.clip(1 - (dx / 290.0) ** 2, 0.0, 1.0))
    h += 16.0 * np.sqrt(np.clip(-body_sdf / 16.0, 0.0, 1.0))  # rounded shoulder tops
    for s in (-1.0, 1.0):
        h -= 2.5 * np.exp(-(((x - CX - s * (168 + 0.25 * (y - 400))) / 3.0) ** 2)) \
            * sstep(372, 400, y)  # sleeve seam
        h -= 3.0 * gauss(x, y, CX + s * 120, 470, 16, 40)  # fold toward the arm
    h += 1.5 * noise(x.shape, 10.0, tx_seed)
    lap = np.zeros_like(x)
    for s in (-1.0, 1.0):
        lap = np.maximum(lap, cover(poly_sdf(lapel(s), box), 0.8))
    h += 4.0 * blur(lap, 0.4)
    navy = lin((0.17, 0.2, 0.31)) * (1.0 + 0.06 * noise(x.shape, 0.5, tx_seed + 1))[..., None]
    blazer = shade(h, navy.astype(np.float32), ao=0.05, shadows=True)
    blouse_m = cover(poly_sdf(np.array(BLOUSE, np.float64), box), 0.8)
    skin_m = cover(poly_sdf(np.array(SKIN_V, np.float64), box), 0.8)
    bh = 60.0 + 4.0 * (1 - np.clip((np.abs(dx) - 15) / 20, 0, 1)) * sstep(330, 345, y)
    blouse = shade(bh.astype(np.float32), np.broadcast_to(lin((0.93, 0.92, 0.93)),
                   x.shape + (3,)).astype(np.float32), ao=0.0)
    neck_shadow = gauss(x, y, CX + 8, 336, 40, 12)
    blouse *= (1.0 - 0.45 * neck_shadow)[..., None]
    rgb = blazer * (1 - blouse_m[..., None]) + blouse * blouse_m[..., None]
    edge = blur(blouse_m, 1.2) - blouse_m
    rgb *= (1.0 - 0.8 * np.clip(edge, 0, 1))[..., None]
    alpha = body * (1.0 - skin_m)
    return down(rgb * alpha[..., None]), down(alpha)


def render_background(person: F) -> F:
    """Soft, out-of-focus office wall, with the person's shadow (person: alpha at 1x)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    wall = lin((0.80, 0.77, 0.72)) * (1.08 - 0.35 * x / W)[..., None]
    wall *= (1.0 - 0.12 * (y / H) ** 2)[..., None]
    window = ((x < 105) & (y > 20) & (y < 400)).astype(np.float32)
    window *= 1.0 - 0.6 * ((np.abs(x - 52) < 4) | (np.abs(y - 205) < 4))
    img = wall * (1 - window[..., None]) + lin((0.97, 0.97, 0.96)) * window[..., None]
    shelf = ((x > 560) & (x < 600)).astype(np.float32)
    img = img * (1 - 0.5 * shelf[..., None]) + lin((0.42, 0.3, 0.2)) * 0.5 * shelf[..., None]
    rng = np.random.default_rng(21)
    leaves = np.zeros((H, W), np.float32)
    for _ in range(40):
        cx, cy = rng.uniform(520, 640), rng.uniform(240, 430)
        cv2.ellipse(leaves, (int(cx), int(cy)), (int(rng.uniform(8, 20)), int(rng.uniform(4, 9))),
                    rng.uniform(0, 180), 0, 360, float(rng.uniform(0.6, 1.0)), -1)
    leaves = np.clip(leaves, 0, 1)
    img = img * (1 - leaves[..., None]) + lin((0.25, 0.38, 0.2)) * leaves[..., None]
    img = cv2.GaussianBlur(img, (0, 0), 9.0)
    shadow = cv2.warpAffine(person, np.float32([[1, 0, 26], [0, 1, 12]]), (W, H))
    img *= (1.0 - 0.22 * cv2.GaussianBlur(shadow, (0, 0), 18.0))[..., None]
    return img.astype(np.float32)


def render_brows() -> tuple[F, F, tuple[int, int, int, int]]:
    box = BROWS_BOX
    x, y = grid(box)
    dens = np.zeros(x.shape, np.float32)
    strokes = np.zeros(x.shape, np.uint8)
    rng = np.random.default_rng(17)
    for (ex, _), side in ((EYE_L, -1.0), (EYE_R, 1.0)):
        spine = catmull([(ex - side * 16, 159.2), (ex - side * 4, 156.2), (ex + side * 7, 154.8),
                         (ex + side * 21, 158.8)], False, 20)
        width = np.interp(np.linspace(0, 1, len(spine)), [0, 0.3, 0.7, 1], [3.8, 3.7, 2.9, 1.2])
        for (px, py), wd in zip(spine, width, strict=True):
            dens = np.maximum(dens, gauss(x, y, px, py, wd * 0.75, wd * 0.45))
        for _ in range(170):
            i = int(rng.integers(0, len(spine) - 1))
            (px, py), wd = spine[i], width[i]
            tang = spine[min(i + 1, len(spine) - 1)] - spine[max(i - 1, 0)]
            tang = tang / (np.linalg.norm(tang) + 1e-9)
            u = i / len(spine)
            up = np.array([0.35 * side, -1.0])
            d = up * (1 - sstep(0.1, 0.35, np.float32(u))) + tang * sstep(0.1, 0.35, np.float32(u))
            d = d / np.linalg.norm(d) + rng.normal(0, 0.12, 2)
            off = rng.normal(0, wd * 0.3)
            p0 = np.array([px, py + off]) - d * 1.2
            p1 = p0 + d * rng.uniform(2.2, 3.6)
            q0 = ((p0 - box[:2] + 0.5) * SUPER - 0.5) * 16
            q1 = ((p1 - box[:2] + 0.5) * SUPER - 0.5) * 16
            cv2.line(strokes, tuple(int(v) for v in q0), tuple(int(v) for v in q1),
                     int(rng.integers(150, 256)), 1, cv2.LINE_AA, shift=4)
    hairs = strokes.astype(np.float32) / 255.0
    alpha = np.clip(0.75 * dens ** 1.3 + 0.7 * hairs * dens ** 0.3, 0, 0.92)
    col = np.broadcast_to(lin((0.27, 0.18, 0.13)), x.shape + (3,)).astype(np.float32)
    col = col * (1.0 - 0.25 * sstep(CX - 20, CX + 20, x))[..., None]
    return down(col), down(alpha.astype(np.float32)), box


# ---------------------------------------------------------------- export

DEPTH_SCALE = 0.5  # depth.png value * DEPTH_SCALE = frame px toward the viewer
MARGIN = 20


def premul_u8(rgb: F, alpha: F) -> NDArray[np.uint8]:
    """Straight linear colour + coverage → premultiplied sRGB RGBA bytes."""
    srgb = np.power(np.clip(rgb, 0, 1), 1 / 2.2) * alpha[..., None]
    out = np.dstack([srgb, alpha]) * 255.0 + 0.5
    return np.clip(out, 0, 255).astype(np.uint8)


def straight(rgb: F, alpha: F) -> F:
    return (rgb / np.maximum(alpha, 1e-4)[..., None]).astype(np.float32)


def head_crop(tx: Textures, box: tuple[int, int, int, int], **kw: float) -> dict[str, F]:
    """render_head over box, computed with a margin so blurs match the full render."""
    hb = HEAD_BOX
    big = (max(hb[0], box[0] - MARGIN), max(hb[1], box[1] - MARGIN),
           min(hb[2], box[2] + MARGIN), min(hb[3], box[3] + MARGIN))
    out = render_head(big, tx, **kw)
    ox, oy = box[0] - big[0], box[1] - big[1]
    return {k: down(v)[oy:oy + box[3] - box[1], ox:ox + box[2] - box[0]] for k, v in out.items()}


def save(path: Path, rgb_or_rgba: NDArray[np.uint8]) -> None:
    code = cv2.COLOR_RGB2BGR if rgb_or_rgba.shape[-1] == 3 else cv2.COLOR_RGBA2BGRA
    img = rgb_or_rgba if rgb_or_rgba.ndim == 2 else cv2.cvtColor(rgb_or_rgba, code)
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")


def build(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tx = Textures()
    head = head_crop(tx, HEAD_BOX)
    save(out / "head.png", premul_u8(straight(head["rgb"], head["alpha"]), head["alpha"]))
    depth = np.clip(head["depth"] / DEPTH_SCALE + 0.5, 0, 255).astype(np.uint8)
    save(out / "head_depth.png", depth)
    eyes, balls = [], []
    for k in range(BLINK_LEVELS):
        e = head_crop(tx, EYES_BOX, blink=k / (BLINK_LEVELS - 1))
        eyes.append(premul_u8(straight(e["rgb"], e["alpha"]), e["alpha"])[..., :3])
        balls.append(np.dstack([e["ball"], e["ball_shade"], np.zeros_like(e["ball"])]))
    save(out / "eyes.png", np.vstack(eyes))
    save(out / "eyes_ball.png", np.clip(np.vstack(balls) * 255 + 0.5, 0, 255).astype(np.uint8))
    mouths = []
    for k in range(MOUTH_LEVELS):
        m = head_crop(tx, MOUTH_BOX, opening=k / (MOUTH_LEVELS - 1))
        mouths.append(premul_u8(straight(m["rgb"], m["alpha"]), m["alpha"]))
    save(out / "mouth.png", np.vstack(mouths))
    iris_rgb, iris_a = build_iris()
    save(out / "iris.png", premul_u8(iris_rgb, iris_a))
    brow_rgb, brow_a, _ = render_brows()
    save(out / "brows.png", premul_u8(brow_rgb, brow_a))
    body_rgb, body_a = render_body()
    save(out / "body.png", premul_u8(straight(body_rgb, body_a), body_a))
    person = np.zeros((H, W), np.float32)
    person[HEAD_BOX[1]:HEAD_BOX[3], HEAD_BOX[0]:HEAD_BOX[2]] = head["alpha"]
    person[BODY_TOP:] = np.maximum(person[BODY_TOP:], body_a)
    save(out / "background.png", to_u8(render_background(person)))
    rig = {
        "format": 1,
        "size": [W, H],
        "background": "background.png",
        "head": {"image": "head.png", "box": HEAD_BOX, "depth": "head_depth.png",
                 "depth_scale": DEPTH_SCALE, "depth_axis": -20.0, "pivot": [CX, 300.0],
                 "bend": [292.0, 372.0], "breath_px": 1.0},
        "body": {"image": "body.png", "top": BODY_TOP, "breath_px": 1.8},
        "eyes": {"image": "eyes.png", "ball": "eyes_ball.png", "box": EYES_BOX,
                 "levels": BLINK_LEVELS, "centres": [EYE_L, EYE_R], "iris": "iris.png",
                 "iris_dy": -1.0, "gaze_px": [6.0, 3.5]},
        "brows": {"image": "brows.png", "box": BROWS_BOX, "raise_px": 4.0},
        "mouth": {"image": "mouth.png", "box": MOUTH_BOX, "levels": MOUTH_LEVELS},
    }
    (out / "rig.json").write_text(json.dumps(rig, indent=2) + "\n")
    check_seams(out, rig)


def check_seams(out: Path, rig: dict[str, Any]) -> None:
    """Every atlas cell must match the head layer along its border, or the pasted
    cell would show as a rectangle."""
    head = cv2.imread(str(out / "head.png"), cv2.IMREAD_UNCHANGED).astype(int)
    hb = rig["head"]["box"]
    for part in ("eyes", "mouth"):
        x0, y0, x1, y1 = rig[part]["box"]
        cells = cv2.imread(str(out / rig[part]["image"]), cv2.IMREAD_UNCHANGED).astype(int)
        base = head[y0 - hb[1]:y1 - hb[1], x0 - hb[0]:x1 - hb[0], :cells.shape[2]]
        for cell in cells.reshape(-1, y1 - y0, *cells.shape[1:]):
            diff = np.abs(cell - base)
            worst = max(diff[0].max(), diff[-1].max(), diff[:, 0].max(), diff[:, -1].max())
            if worst > 2:
                raise ValueError(f"{part} atlas differs from head.png on its border by {worst}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "avatars" / "default")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
