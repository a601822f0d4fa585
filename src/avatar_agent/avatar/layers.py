"""Loading and compositing the avatar's pre-drawn layers.

Every RGBA layer is premultiplied sRGB bytes, so one layer over another is
``out = src + dst * (255 - a) / 255``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]


def load_layer(path: Path, channels: int) -> U8:
    if not path.is_file():
        raise FileNotFoundError(f"avatar asset missing: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"avatar asset is not a readable image: {path}")
    have = 1 if img.ndim == 2 else img.shape[2]
    if have != channels:
        raise ValueError(f"avatar asset {path} has {have} channels, expected {channels}")
    if channels == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif channels == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return np.ascontiguousarray(img, dtype=np.uint8)


def parse_box(value: Any, where: str) -> tuple[int, int, int, int]:
    if not (isinstance(value, list) and len(value) == 4):
        raise ValueError(f"{where}: expected a box [x0, y0, x1, y1], got {value!r}")
    x0, y0, x1, y1 = (int(v) for v in value)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{where}: empty box {value!r}")
    return x0, y0, x1, y1


def split_atlas(img: U8, levels: int, box: tuple[int, int, int, int], path: Path) -> U8:
    h, w = box[3] - box[1], box[2] - box[0]
    if img.shape[0] != h * levels or img.shape[1] != w:
        raise ValueError(
            f"{path}: atlas is {img.shape[1]}x{img.shape[0]}, rig says {levels} cells of {w}x{h}"
        )
    return np.ascontiguousarray(img.reshape(levels, h, w, *img.shape[2:]))


# OpenCV copies strided views such as img[..., 3] slowly, so channels are taken
# with extractChannel / cvtColor instead of numpy slicing.


def over_rgb(dst: U8, src: U8) -> None:
    """Premultiplied RGBA src over RGB dst (same size), in place."""
    inv = cv2.bitwise_not(cv2.extractChannel(src, 3))
    scaled = cv2.multiply(dst, cv2.merge((inv, inv, inv)), scale=1.0 / 255.0)
    dst[...] = cv2.add(scaled, cv2.cvtColor(src, cv2.COLOR_RGBA2RGB))


def over_rgba(dst: U8, src: U8) -> None:
    """Premultiplied RGBA src over premultiplied RGBA dst, in place."""
    inv = cv2.bitwise_not(cv2.extractChannel(src, 3))
    scaled = cv2.multiply(dst, cv2.merge((inv, inv, inv, inv)), scale=1.0 / 255.0)
    dst[...] = cv2.add(scaled, src)
