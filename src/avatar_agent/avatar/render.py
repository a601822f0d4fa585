"""Pose → 640x480 RGB frame, composited from the avatar's pre-drawn layers.

The art lives in ``assets/avatars/<name>/`` (see ``rig.json`` there): a background,
a body layer, a head layer at rest, atlases of the eye strip at several lid
positions and of the mouth at several openings, an iris and the eyebrows. Per
frame we only paste atlas cells, place the irises, bend the head layer and
composite; everything else is prepared once in ``__init__``.

All RGBA layers are premultiplied sRGB bytes, so compositing is
``out = src + dst * (255 - a) / 255``.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from avatar_agent.avatar.animator import Pose
from avatar_agent.avatar.face_warp import brow_fields, mouth_curve_field
from avatar_agent.avatar.layers import U8, load_layer, over_rgb, over_rgba, parse_box, split_atlas
from avatar_agent.core.config import PROJECT_ROOT

F32 = npt.NDArray[np.float32]
_MAP_STEP = 8  # the head's bend field is smooth, so it is computed on a coarse grid
# The chest moves under 2 px with a breath, so it is pre-composited over the
# background at this many breath levels; a step is ~0.25 px, far below notice.
_BREATH_LEVELS = 16
_HEAD_TRAVEL = 24  # px the bent and leaning head may move past its layer's opaque area
# The body is warped for a lean at this many levels (built when first needed); a
# step moves the shoulders' outer edge under a pixel.
_LEAN_LEVELS = 16
_BODY_CACHE = 64  # (breath, lean) body levels kept per renderer, ~0.35 MB each
_PART_PAD = 8  # px around the brows box that a raised or frowning brow may reach


def default_avatar_dir() -> Path:
    return PROJECT_ROOT / "assets" / "avatars" / "default"


def _bend_box(paint: tuple[int, int, int, int], width: int, height: int
              ) -> tuple[int, int, int, int]:
    """The paint box grown by the head's travel, sized in whole map blocks, inside the layer."""
    out = []
    for lo, hi, limit in ((paint[0], paint[2], width), (paint[1], paint[3], height)):
        lo, hi = max(0, lo - _HEAD_TRAVEL), min(limit, hi + _HEAD_TRAVEL)
        size = min(-(-(hi - lo) // _MAP_STEP) * _MAP_STEP, limit - limit % _MAP_STEP)
        lo = max(0, min(lo, limit - size))
        out.append((lo, lo + size))
    return out[0][0], out[1][0], out[0][1], out[1][1]


class AvatarRenderer:
    """Draws one avatar. Holds only its own buffers, so one instance per call is thread-safe."""

    def __init__(self, avatar_dir: Path | None = None, width: int = 640, height: int = 480) -> None:
        root = Path(avatar_dir) if avatar_dir is not None else default_avatar_dir()
        rig_path = root / "rig.json"
        if not rig_path.is_file():
            raise FileNotFoundError(f"avatar rig missing: {rig_path}")
        try:
            rig = json.loads(rig_path.read_text())
            self._setup(root, rig)
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"avatar rig {rig_path} is invalid: {exc!r}") from exc
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.width, self.height = width, height

    def _setup(self, root: Path, rig: dict[str, Any]) -> None:
        self._size = (int(rig["size"][0]), int(rig["size"][1]))
        w, h = self._size
        self._bg = load_layer(root / rig["background"], 3)
        if self._bg.shape[:2] != (h, w):
            raise ValueError(f"{root / rig['background']}: expected {w}x{h}")

        head = rig["head"]
        self._head_box = parse_box(head["box"], "head.box")
        x0, y0, x1, y1 = self._head_box
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise ValueError(f"head.box {self._head_box} lies outside the {w}x{h} frame")
        self._head = load_layer(root / head["image"], 4)
        depth = load_layer(root / head["depth"], 1).astype(np.float32) * float(head["depth_scale"])
        if self._head.shape[:2] != (y1 - y0, x1 - x0) or depth.shape != self._head.shape[:2]:
            raise ValueError(f"{root / head['image']}: size does not match head.box")
        self._depth_axis = float(head["depth_axis"])
        self._pivot = (float(head["pivot"][0]) - x0, float(head["pivot"][1]) - y0)
        bend0, bend1 = (float(v) - y0 for v in head["bend"])
        self._head_breath = float(head["breath_px"])
        # Only the part of the head layer that can hold paint after bending is warped.
        ys_, xs_ = np.nonzero(self._head[..., 3])
        if len(xs_) == 0:
            raise ValueError(f"{root / head['image']}: the head layer is empty")
        self._bend_box = _bend_box(
            (int(xs_.min()), int(ys_.min()), int(xs_.max()) + 1, int(ys_.max()) + 1),
            x1 - x0, y1 - y0,
        )
        bx0, by0 = self._bend_box[0], self._bend_box[1]
        # Coarse grid for the bend field: pixel coordinates, depth and the bend
        # weight (1 for the skull, fading to 0 down the neck so its base stays put).
        # Node k sits at the centre of block k, which is exactly where cv2.resize
        # puts it when the grid is scaled up by _MAP_STEP.
        bw, bh = self._bend_box[2] - bx0, self._bend_box[3] - by0
        nx, ny = -(-bw // _MAP_STEP), -(-bh // _MAP_STEP)
        half = (_MAP_STEP - 1) / 2.0
        xs = bx0 + np.arange(nx, dtype=np.float32) * _MAP_STEP + half
        ys = by0 + np.arange(ny, dtype=np.float32) * _MAP_STEP + half
        self._gx, self._gy = np.meshgrid(xs, ys)
        padded = cv2.copyMakeBorder(depth, 0, _MAP_STEP, 0, _MAP_STEP, cv2.BORDER_REPLICATE)
        self._gz = cv2.remap(padded, self._gx, self._gy, cv2.INTER_LINEAR) - self._depth_axis
        t = np.clip((self._gy - bend0) / max(bend1 - bend0, 1.0), 0.0, 1.0)
        self._gw = 1.0 - t * t * (3.0 - 2.0 * t)

        body = rig["body"]
        body_img = load_layer(root / body["image"], 4)
        self._body_top = int(body["top"])
        if body_img.shape[1] != w or self._body_top + body_img.shape[0] != h:
            raise ValueError(f"{root / body['image']}: must span the frame below body.top")
        lean = rig["lean"]
        self._lean_pivot = (float(lean["pivot"][0]), float(lean["pivot"][1]))
        self._lean_scale = float(lean["scale"])
        self._body_img = body_img
        self._body_breath_px = float(body["breath_px"])
        self._body_cache: OrderedDict[tuple[int, int], tuple[U8, U8]] = OrderedDict()
        for level in range(_BREATH_LEVELS):  # upright is the common case: build it now
            self._body_at(level, 0)

        eyes = rig["eyes"]
        self._eyes_box = parse_box(eyes["box"], "eyes.box")
        levels = int(eyes["levels"])
        eyes_path, ball_path = root / eyes["image"], root / eyes["ball"]
        self._eyes = split_atlas(load_layer(eyes_path, 3), levels, self._eyes_box, eyes_path)
        ball = split_atlas(load_layer(ball_path, 3), levels, self._eyes_box, ball_path)
        self._ball_vis = ball[..., 0].astype(np.float32) / 255.0
        self._ball_shade = ball[..., 1].astype(np.float32) / 255.0
        iris = load_layer(root / eyes["iris"], 4).astype(np.float32) / 255.0
        self._iris = iris
        self._iris_half = iris.shape[0] // 2
        self._eye_centres = [(float(c[0]), float(c[1]) + float(eyes["iris_dy"]))
                             for c in eyes["centres"]]
        self._gaze_px = (float(eyes["gaze_px"][0]), float(eyes["gaze_px"][1]))
        ew, eh = self._eyes_box[2] - self._eyes_box[0], self._eyes_box[3] - self._eyes_box[1]
        reach_x = self._gaze_px[0] + self._iris_half + 2
        reach_y = self._gaze_px[1] + self._iris_half + 2
        for cx, cy in self._eye_centres:
            lx, ly = cx - self._eyes_box[0], cy - self._eyes_box[1]
            if lx - reach_x < 0 or lx + reach_x > ew or ly - reach_y < 0 or ly + reach_y > eh:
                raise ValueError(f"eyes.box {self._eyes_box} is too small for the iris travel")

        brows = rig["brows"]
        self._brows_box = parse_box(brows["box"], "brows.box")
        brow_img = load_layer(root / brows["image"], 4)
        bx0, by0, bx1, by1 = self._brows_box
        if brow_img.shape[:2] != (by1 - by0, bx1 - bx0):
            raise ValueError(f"{root / brows['image']}: size does not match brows.box")
        self._setup_brows(brows, brow_img)

        mouth = rig["mouth"]
        self._mouth_box = parse_box(mouth["box"], "mouth.box")
        mouth_path = root / mouth["image"]
        self._mouth = split_atlas(load_layer(mouth_path, 4), int(mouth["levels"]), self._mouth_box,
                             mouth_path)
        self._setup_mouth(mouth)
        for name, b in (("eyes", self._eyes_box), ("brows", self._brows_box),
                        ("mouth", self._mouth_box)):
            if b[0] < x0 or b[1] < y0 or b[2] > x1 or b[3] > y1:
                raise ValueError(f"{name}.box {b} lies outside head.box {self._head_box}")

    def _setup_brows(self, brows: dict[str, Any], img: U8) -> None:
        """Pad the brows part so a raised or frowning brow has room to move."""
        x0, y0, x1, y1 = self._brows_box
        hx0, hy0, hx1, hy1 = self._head_box
        p = _PART_PAD
        box = (max(hx0, x0 - p), max(hy0, y0 - p), min(hx1, x1 + p), min(hy1, y1 + p))
        canvas = np.zeros((box[3] - box[1], box[2] - box[0], 4), np.uint8)
        canvas[y0 - box[1]:y1 - box[1], x0 - box[0]:x1 - box[0]] = img
        self._brows_box, self._brows = box, canvas
        inner = [float(v) for v in brows["inner"]]
        centre = (inner[0] + inner[1]) / 2.0
        self._brow_fields = brow_fields(
            (box[2] - box[0], box[3] - box[1]), centre - box[0], abs(inner[1] - inner[0]) / 2,
            float(brows["frown_reach"]), float(brows["raise_px"]), float(brows["frown_px"]),
            float(brows["pinch_px"]),
        )

    def _setup_mouth(self, mouth: dict[str, Any]) -> None:
        (lx, ly), (rx, ry) = ((float(c[0]), float(c[1])) for c in mouth["corners"])
        x0, y0 = self._mouth_box[0], self._mouth_box[1]
        size = (self._mouth_box[2] - x0, self._mouth_box[3] - y0)
        self._mouth_base_x, self._mouth_base_y, self._mouth_curve_dy = mouth_curve_field(
            size, ((lx + rx) / 2 - x0, (ly + ry) / 2 - y0), (rx - lx) / 2,
            float(mouth["curve_px"]),
        )

    def _warp_brows(self, pose: Pose) -> U8:
        raise_, frown = float(pose.brow_raise), float(pose.brow_frown)
        if abs(raise_) < 1e-3 and abs(frown) < 1e-3:
            return self._brows
        f = self._brow_fields
        map_x = f.base_x + np.float32(frown) * f.frown_dx
        map_y = f.base_y + np.float32(raise_) * f.raise_dy + np.float32(frown) * f.frown_dy
        return np.asarray(cv2.remap(self._brows, map_x, map_y, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0)),
                          dtype=np.uint8)

    # ------------------------------------------------------------------ per frame

    def render(self, pose: Pose) -> U8:
        canvas = self._head.copy()  # per frame, so concurrent renders never share a buffer
        self._draw_eyes(canvas, pose)
        self._paste_box(canvas, self._brows_box, self._warp_brows(pose), over=True)
        self._draw_mouth(canvas, pose.mouth_open, pose.mouth_curve)
        level = round((min(1.0, max(-1.0, pose.breath)) + 1.0) / 2.0 * (_BREATH_LEVELS - 1))
        lean = round(min(1.0, max(0.0, pose.lean)) * (_LEAN_LEVELS - 1))
        room_body, body_in_head = self._body_at(level, lean)
        frame = np.empty_like(self._bg)
        top = self._body_top
        frame[:top] = self._bg[:top]
        frame[top:] = room_body
        # Inside the head box the head goes over the bare background and the
        # body over the head, because the neck disappears into the collar.
        x0, y0, x1, y1 = self._head_box
        cx0, cy0, cx1, cy1 = self._bend_box
        region = self._bg[y0 + cy0:y0 + cy1, x0 + cx0:x0 + cx1].copy()
        over_rgb(region, self._bend_head(canvas, pose))
        if cy1 + y0 > top:
            row = max(0, top - y0 - cy0)
            over_rgb(region[row:], body_in_head)
        frame[y0 + cy0:y0 + cy1, x0 + cx0:x0 + cx1] = region
        if (self.width, self.height) != self._size:
            small = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
            return np.ascontiguousarray(small, dtype=np.uint8)
        return frame

    def _local(self, box: tuple[int, int, int, int]) -> tuple[slice, slice]:
        x0, y0 = self._head_box[0], self._head_box[1]
        return slice(box[1] - y0, box[3] - y0), slice(box[0] - x0, box[2] - x0)

    def _paste_box(self, canvas: U8, box: tuple[int, int, int, int], img: U8,
                   over: bool) -> None:
        ys, xs = self._local(box)
        if over:
            over_rgba(canvas[ys, xs], img)
        else:
            canvas[ys, xs] = img

    @staticmethod
    def _level(value: float, levels: int) -> tuple[int, int, float]:
        pos = min(1.0, max(0.0, float(value))) * (levels - 1)
        lo = min(int(pos), levels - 2)
        return lo, lo + 1, pos - lo

    def _draw_eyes(self, canvas: U8, pose: Pose) -> None:
        lo, hi, f = self._level(pose.blink, self._eyes.shape[0])
        if f < 1e-3 or f > 1 - 1e-3:
            lo = hi = lo if f < 0.5 else hi
            strip = self._eyes[lo].copy()
        else:
            strip = np.asarray(cv2.addWeighted(self._eyes[lo], 1 - f, self._eyes[hi], f, 0.0),
                               dtype=np.uint8)
        ex0, ey0 = self._eyes_box[0], self._eyes_box[1]
        gx = max(-1.0, min(1.0, pose.gaze_x)) * self._gaze_px[0]
        gy = max(-1.0, min(1.0, pose.gaze_y)) * self._gaze_px[1]
        r = self._iris_half
        size = 2 * r + 2  # one spare pixel for the sub-pixel shift
        for cx, cy in self._eye_centres:
            px, py = cx + gx - ex0, cy + gy - ey0
            ix, iy = math.floor(px), math.floor(py)
            shift = np.array([[1.0, 0.0, px - ix], [0.0, 1.0, py - iy]], dtype=np.float32)
            iris = cv2.warpAffine(self._iris, shift, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT)
            ys, xs = slice(iy - r, iy - r + size), slice(ix - r, ix - r + size)
            # The lids cover the iris exactly where they cover the eyeball.
            vis = self._ball_vis[lo, ys, xs] * (1 - f) + self._ball_vis[hi, ys, xs] * f
            shade = self._ball_shade[lo, ys, xs] * (1 - f) + self._ball_shade[hi, ys, xs] * f
            region = strip[ys, xs].astype(np.float32)
            region *= (1.0 - iris[..., 3] * vis)[..., None]
            region += iris[..., :3] * (255.0 * vis * shade)[..., None]
            strip[ys, xs] = np.clip(region + 0.5, 0.0, 255.0).astype(np.uint8)
        ys, xs = self._local(self._eyes_box)
        canvas[ys, xs, :3] = strip

    def _draw_mouth(self, canvas: U8, opening: float, curve: float) -> None:
        lo, hi, f = self._level(opening, self._mouth.shape[0])
        if f < 0.02:
            cell = self._mouth[lo]
        elif f > 0.98:
            cell = self._mouth[hi]
        else:
            cell = np.asarray(cv2.addWeighted(self._mouth[lo], 1 - f, self._mouth[hi], f, 0.0),
                              dtype=np.uint8)
        if abs(curve) > 1e-3:
            map_y = self._mouth_base_y + np.float32(curve) * self._mouth_curve_dy
            cell = np.asarray(cv2.remap(cell, self._mouth_base_x, map_y, cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE), dtype=np.uint8)
        self._paste_box(canvas, self._mouth_box, cell, over=False)

    def _bend_head(self, canvas: U8, pose: Pose) -> U8:
        """Turn, nod and tilt the head layer; the neck base stays where the body holds it."""
        yaw, pitch, roll = (math.radians(v) for v in (pose.head_yaw, pose.head_pitch,
                                                      pose.head_roll))
        px, py = self._pivot
        dx0, dy0 = self._gx - px, self._gy - py
        c, s = math.cos(roll), math.sin(roll)
        # Forward displacement of each point; the map needs the inverse, which for
        # displacements this small is the forward one with its sign flipped.
        move_x = (c - 1.0) * dx0 - s * dy0 - yaw * self._gz
        move_y = s * dx0 + (c - 1.0) * dy0 - pitch * self._gz
        breath = -self._head_breath * pose.breath
        # Leaning in scales head and neck about the rig's lean pivot, exactly as
        # the body is scaled, so the collar still meets the neck.
        grow = self._lean_scale * min(1.0, max(0.0, pose.lean)) / (
            1.0 + self._lean_scale * min(1.0, max(0.0, pose.lean)))
        lx, ly = self._lean_pivot[0] - self._head_box[0], self._lean_pivot[1] - self._head_box[1]
        map_x = self._gx - move_x * self._gw - grow * (self._gx - lx)
        map_y = self._gy - move_y * self._gw - breath - grow * (self._gy - ly)
        # The bend box is a whole number of blocks, so this is exactly its size.
        size = (map_x.shape[1] * _MAP_STEP, map_x.shape[0] * _MAP_STEP)
        full_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)
        full_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)
        bent = cv2.remap(canvas, full_x, full_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        return np.asarray(bent, dtype=np.uint8)

    def _body_at(self, level: int, lean: int) -> tuple[U8, U8]:
        """The room with the body at a breath and lean level, and the body over the head box."""
        key = (level, lean)
        hit = self._body_cache.get(key)
        if hit is not None:
            self._body_cache.move_to_end(key)
            return hit
        body = self._body_img
        h, w = body.shape[:2]
        top = self._body_top
        x0, y0, x1, y1 = self._head_box
        cx0, cy0, cx1, cy1 = self._bend_box
        rows = max(0, y0 + cy1 - top)
        breath = -1.0 + 2.0 * level / (_BREATH_LEVELS - 1)
        # Shoulders rise most with a breath; the frame's bottom edge stays put.
        k = self._body_breath_px * breath / max(h - 40.0, 1.0)
        g = self._lean_scale * lean / (_LEAN_LEVELS - 1)
        px, py = self._lean_pivot[0], self._lean_pivot[1] - top
        move = np.array([[1.0 + g, 0.0, -g * px],
                         [0.0, (1.0 + g) * (1.0 + k), -(1.0 + g) * k * h - g * py]],
                        dtype=np.float32)
        moved = np.asarray(
            cv2.warpAffine(body, move, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE if g > 0 else cv2.BORDER_CONSTANT,
                           borderValue=(0, 0, 0, 0)),
            dtype=np.uint8,
        )
        composed = self._bg[top:].copy()
        over_rgb(composed, moved)
        band = moved[max(0, y0 + cy0 - top):y0 + cy1 - top, x0 + cx0:x0 + cx1]
        out = (composed, np.ascontiguousarray(band[:rows]))
        self._body_cache[key] = out
        if len(self._body_cache) > _BODY_CACHE:
            self._body_cache.popitem(last=False)
        return out
