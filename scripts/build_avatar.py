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
The drawing code lives in scripts/avatar_art/; it imports as a top-level package
because Python puts a script's own folder on sys.path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from avatar_art.draw import (
    BLINK_LEVELS,
    BODY_TOP,
    BROWS_BOX,
    CX,
    EYE_L,
    EYE_R,
    EYES_BOX,
    HEAD_BOX,
    MOUTH_BOX,
    MOUTH_LEVELS,
    F,
    H,
    W,
    down,
    to_u8,
)
from avatar_art.head import Textures, build_iris, render_head
from avatar_art.parts import render_background, render_body, render_brows
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]


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
        "brows": {"image": "brows.png", "box": BROWS_BOX, "raise_px": 5.0,
                  "inner": [300.0, 342.0], "frown_px": 2.0, "pinch_px": 6.5,
                  "frown_reach": 26.0},
        "mouth": {"image": "mouth.png", "box": MOUTH_BOX, "levels": MOUTH_LEVELS,
                  "corners": [[293.0, 257.0], [347.0, 257.0]], "curve_px": 5.5},
        # Leaning in scales head and body about this point by up to `scale`. At eye
        # height, so a lean that reads in one frame (12 %) keeps the hair inside the
        # head layer's margin; the chest and shoulders move down and out, as they would.
        "lean": {"pivot": [CX, 170.0], "scale": 0.12},
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
