"""A contact sheet of a persona: the avatar at each customer level × conversation state.

For someone tuning a persona file: one picture shows what every rule does, without
placing a call. Each cell is rendered after the animator has settled on the cell's
cue targets, with the eyes open and, while speaking, a mid-sentence mouth.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from avatar_agent.avatar.animator import CueAnimator
from avatar_agent.avatar.behavior import STATES, Persona, cue_targets
from avatar_agent.avatar.live_preview import affect_for
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.core.levels import LEVELS

CELL = (320, 240)  # each frame is shown at half size
MARGIN_LEFT = 120
MARGIN_TOP = 56
SETTLE_S = 3.0
SPEAKING_MOUTH = 0.35
U8 = npt.NDArray[np.uint8]


def sheet_size() -> tuple[int, int]:
    """(width, height) of the contact sheet in pixels."""
    return MARGIN_LEFT + CELL[0] * len(STATES), MARGIN_TOP + CELL[1] * len(LEVELS)


def render_cell(persona: Persona, level: str, state: str, renderer: AvatarRenderer,
                seed: int = 0) -> U8:
    anim = CueAnimator(seed)
    anim.set_targets(cue_targets(persona, affect_for(level), state))
    mouth = SPEAKING_MOUTH if state in ("speaking", "apologising") else 0.0
    frames = round(SETTLE_S * 30)
    pose = anim.pose(0.0, mouth)
    for k in range(1, frames + 1):
        pose = anim.pose(k / 30.0, mouth)
    # Blinks and nods are moments, not the persona's look: show the settled face.
    pose = dataclasses.replace(pose, blink=0.0, head_pitch=anim.cue("head_pitch"))
    return renderer.render(pose)


def contact_sheet(persona: Persona, renderer: AvatarRenderer | None = None) -> U8:
    """The sheet as an RGB image, levels down the side and states across the top."""
    renderer = renderer or AvatarRenderer()
    w, h = sheet_size()
    sheet = np.full((h, w, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(sheet, f"persona: {persona.name}", (8, 20), font, 0.55, (0, 0, 0), 1,
                cv2.LINE_AA)
    for j, state in enumerate(STATES):
        cv2.putText(sheet, state, (MARGIN_LEFT + j * CELL[0] + 8, MARGIN_TOP - 10), font, 0.6,
                    (0, 0, 0), 1, cv2.LINE_AA)
    for i, level in enumerate(LEVELS):
        y = MARGIN_TOP + i * CELL[1]
        cv2.putText(sheet, level, (8, y + CELL[1] // 2), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        for j, state in enumerate(STATES):
            frame = render_cell(persona, level, state, renderer)
            small = cv2.resize(frame, CELL, interpolation=cv2.INTER_AREA)
            x = MARGIN_LEFT + j * CELL[0]
            sheet[y:y + CELL[1], x:x + CELL[0]] = small
            cv2.rectangle(sheet, (x, y), (x + CELL[0] - 1, y + CELL[1] - 1), (255, 255, 255), 1)
    return sheet


def write_sheet(persona: Persona, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(contact_sheet(persona), cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {out}")
    return out
