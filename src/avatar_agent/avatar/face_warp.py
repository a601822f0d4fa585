"""Displacement fields that move the brows and the mouth corners of the 2-D avatar.

Each field is built once per renderer; a frame only scales it by the pose's cue
value and hands it to ``cv2.remap``. Fields are backward maps: the output pixel
(x, y) reads the source at (x, y) + field. Every field fades to zero before the
edge of its part, so the warped part still meets the head layer without a seam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def _smoothstep(x: F32) -> F32:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x * x * (3.0 - 2.0 * x), dtype=np.float32)


@dataclass(frozen=True)
class BrowFields:
    base_x: F32
    base_y: F32
    raise_dy: F32  # per unit brow_raise
    frown_dx: F32  # per unit brow_frown
    frown_dy: F32


def brow_fields(size: tuple[int, int], centre_x: float, inner_half: float, reach: float,
                raise_px: float, frown_px: float, pinch_px: float) -> BrowFields:
    """Fields over a (width, height) brows canvas.

    `centre_x` is the face's midline in canvas pixels, `inner_half` the distance from
    it to each brow's inner end; the frown moves the inner ends down by `frown_px`
    and toward the midline by `pinch_px`, fading out over `reach` pixels outward.
    """
    w, h = size
    base_x, base_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    off = base_x - np.float32(centre_x)
    weight = 1.0 - _smoothstep((np.abs(off) - np.float32(inner_half)) / np.float32(reach))
    raise_dy = np.full((h, w), np.float32(raise_px), dtype=np.float32)  # read from below: up
    frown_dy = np.asarray(-frown_px * weight, dtype=np.float32)  # read from above: down
    # Read from farther out, so the inner ends come toward the midline.
    frown_dx = np.asarray(np.sign(off) * pinch_px * weight, dtype=np.float32)
    return BrowFields(base_x, base_y, raise_dy, frown_dx, frown_dy)


def mouth_curve_field(size: tuple[int, int], centre: tuple[float, float], half_width: float,
                      curve_px: float) -> tuple[F32, F32, F32]:
    """(base_x, base_y, dy per unit curve) over the mouth cell.

    Positive curve lifts the corners (a smile), negative turns them down; the
    lift grows with the square of the distance from the mouth's centre, is
    greatest on the lip line and fades above and below it and past the corners.
    """
    w, h = size
    base_x, base_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    u = np.abs(base_x - np.float32(centre[0])) / np.float32(half_width)
    along = np.minimum(u, 1.0) ** 2 * (1.0 - _smoothstep((u - 1.1) / 0.6))
    across = np.exp(-(((base_y - np.float32(centre[1])) / np.float32(12.0)) ** 2))
    dy = np.asarray(curve_px * along * across, dtype=np.float32)
    return base_x, base_y, dy
