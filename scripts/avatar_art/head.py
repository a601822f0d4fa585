"""The head: geometry of the face, eyes and mouth, hair textures, and the iris."""

from __future__ import annotations

import cv2
import numpy as np

from .draw import (
    CX,
    EYE_HALF,
    EYE_L,
    EYE_R,
    HAIR,
    HEAD_BOX,
    IRIS_R,
    JAW_DROP,
    MOUTH_HALF,
    PART_X,
    SKIN,
    STOMION,
    SUPER,
    F,
    arch,
    blur,
    catmull,
    cover,
    down,
    gauss,
    grid,
    lin,
    noise,
    over,
    poly_sdf,
    shade,
    sstep,
)

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
