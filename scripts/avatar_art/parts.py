"""Parts drawn apart from the head: blazer and blouse, the wall behind, the eyebrows."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from .draw import (
    BODY_TOP,
    BROWS_BOX,
    CX,
    EYE_L,
    EYE_R,
    SUPER,
    F,
    H,
    W,
    blur,
    catmull,
    cover,
    down,
    gauss,
    grid,
    lin,
    noise,
    poly_sdf,
    shade,
    sstep,
)
from .head import mirror

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

