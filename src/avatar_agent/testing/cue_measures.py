"""What a persona's cues do to the rendered avatar, measured by a face mesh.

For someone tuning a persona or the renderer: the avatar is rendered settled at a
customer level and conversation state (as the contact sheet shows it) and MediaPipe's
face mesh, the one perception runs on customers, measures the face it sees:

* `face_box`: area of the box around every landmark, as a share of the frame
  (grows as the avatar leans in);
* `inner_brow`: distance between the inner brow ends (landmarks 55 and 285) over the
  distance between the outer eye corners (33 and 263), so a lean does not change it;
  it shrinks as the brows draw together in a frown.

    .venv/bin/python -m avatar_agent.testing.cue_measures [PERSONA.yaml]
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from avatar_agent.avatar.behavior import STATES, Persona, load_persona
from avatar_agent.avatar.preview import render_cell
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.core.config import PROJECT_ROOT
from avatar_agent.core.levels import LEVELS
from avatar_agent.perception.face import FaceAnalyzer


@dataclass(frozen=True)
class FaceMeasures:
    face_box: float  # share of the frame's area
    inner_brow: float  # inner-brow distance / outer-eye-corner distance
    inner_brow_px: float


def measure_frame(rgb: npt.NDArray[np.uint8], faces: FaceAnalyzer) -> FaceMeasures | None:
    points = faces.detect(rgb, 0.0)
    if points is None:
        return None
    h, w = rgb.shape[:2]
    xy = np.asarray(points[:, :2], dtype=np.float64) * np.array([w, h])

    def d(a: int, b: int) -> float:
        return math.hypot(*(xy[a] - xy[b]))

    span = xy.max(axis=0) - xy.min(axis=0)
    return FaceMeasures(float(span[0] * span[1] / (w * h)), d(55, 285) / d(33, 263), d(55, 285))


def measure_cell(persona: Persona, level: str, state: str,
                 renderer: AvatarRenderer | None = None) -> FaceMeasures | None:
    faces = FaceAnalyzer(static_image_mode=True, max_faces=1)
    return measure_frame(render_cell(persona, level, state, renderer or AvatarRenderer()), faces)


def without_apology_frown(persona: Persona) -> Persona:
    """The persona with the apologising state's own frown taken out (levels and rules kept)."""
    states = persona.states
    apologising = states.apologising.model_copy(update={"brow_frown": 0.0})
    return persona.model_copy(update={"states": states.model_copy(
        update={"apologising": apologising})})


def apology_frown_gaps(persona: Persona, level: str, seeds: range,
                       renderer: AvatarRenderer | None = None) -> list[float]:
    """Per head pose (seed): inner-brow px without the apology's frown minus with it,
    on the same apologising frame; positive means the frown draws the brows together."""
    renderer = renderer or AvatarRenderer()
    faces = FaceAnalyzer(static_image_mode=True, max_faces=1)
    plain_persona = without_apology_frown(persona)
    gaps = []
    for seed in seeds:
        frown = measure_frame(render_cell(persona, level, "apologising", renderer, seed=seed),
                              faces)
        plain = measure_frame(render_cell(plain_persona, level, "apologising", renderer,
                                          seed=seed), faces)
        if frown is None or plain is None:
            raise ValueError(f"no face found at {level}/apologising, seed {seed}")
        gaps.append(plain.inner_brow_px - frown.inner_brow_px)
    return gaps


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        PROJECT_ROOT / "configs" / "behaviors" / "support.yaml"
    persona = load_persona(path)
    renderer = AvatarRenderer()
    print(f"{'level':<13}{'state':<13}{'face box':>9}{'inner brow':>12}{'(px)':>7}")
    for level in LEVELS:
        for state in STATES:
            m = measure_cell(persona, level, state, renderer)
            if m is None:
                print(f"{level:<13}{state:<13}  no face found")
                continue
            print(f"{level:<13}{state:<13}{m.face_box:>9.4f}{m.inner_brow:>12.4f}"
                  f"{m.inner_brow_px:>7.1f}")
    print("apology frown: inner brows closer by (px, per head pose seed 0-7)")
    for level in LEVELS:
        gaps = apology_frown_gaps(persona, level, range(8), renderer)
        print(f"  {level:<13}" + " ".join(f"{g:5.2f}" for g in gaps)
              + f"   mean {sum(gaps) / len(gaps):.2f}")


if __name__ == "__main__":
    main()
