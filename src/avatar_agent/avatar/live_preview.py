"""The avatar as the tuning page shows it while a person moves a slider.

`PreviewStream` turns (persona, time) into frames through the same animator and
renderer a call uses, so what the page shows is what a customer would see. Three
views: `single` pinned to one customer level and conversation state, `cycle` through
every level × state (a few seconds each), and `side`: calm, dissatisfied and furious
next to each other in one state. While the avatar speaks or apologises, its mouth
follows a sample line's real phoneme timeline (looped), so lip movement and the
apology's frown and mouth corners are judged together.

CPU-bound and synchronous; the server runs it in its render pool, one stream per
viewer, frames in time order.
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar_agent.avatar.animator import CueAnimator
from avatar_agent.avatar.behavior import STATES, AffectInput, Persona, cue_targets
from avatar_agent.avatar.layers import U8
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.core.levels import LEVELS
from avatar_agent.speech.lipsync import MouthTimeline

VIEWS = ("single", "cycle", "side")
CYCLE_S = 4.0  # seconds on each level × state in the cycling view
LINE_GAP_S = 0.8  # silence between repeats of the sample line
# A representative anger index per level, where its amounts apply in full.
LEVEL_ANGER = {"calm": 10.0, "dissatisfied": 50.0, "furious": 88.0}
SPEAKING = ("speaking", "apologising")


def affect_for(level: str) -> AffectInput:
    return AffectInput(level=level, anger_index=LEVEL_ANGER[level],
                       emotion="angry" if level == "furious" else "neutral")


def _label(frame: U8, text: str, scale: float = 0.7) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(frame, text, (10, int(28 * scale / 0.7)), font, scale, colour, width,
                    cv2.LINE_AA)


class PreviewStream:
    """Frames for one viewer; `frame` must be called with rising times."""

    def __init__(self, renderer: AvatarRenderer, line: MouthTimeline | None,
                 view: str = "single", level: str = "calm", state: str = "idle",
                 seed: int = 0) -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        self.renderer = renderer
        self.line = line
        self.view, self.level, self.state = view, level, state
        count = len(LEVELS) if view == "side" else 1
        self._anims = [CueAnimator(seed + i) for i in range(count)]

    def mouth_at(self, t: float, state: str) -> float:
        if state not in SPEAKING or self.line is None:
            return 0.0
        return self.line.opening_at(t % (self.line.duration + LINE_GAP_S))

    def showing(self, t: float) -> tuple[str, str]:
        """The (level, state) the single or cycling view shows at time t."""
        if self.view != "cycle":
            return self.level, self.state
        k = int(t // CYCLE_S) % (len(LEVELS) * len(STATES))
        return LEVELS[k // len(STATES)], STATES[k % len(STATES)]

    def _render(self, anim: CueAnimator, persona: Persona, t: float, level: str,
                state: str) -> U8:
        anim.set_targets(cue_targets(persona, affect_for(level), state))
        return self.renderer.render(anim.pose(t, self.mouth_at(t, state)))

    def frame(self, persona: Persona, t: float) -> U8:
        if self.view != "side":
            level, state = self.showing(t)
            out = self._render(self._anims[0], persona, t, level, state)
            if self.view == "cycle":
                out = np.ascontiguousarray(out)
                _label(out, f"{level} / {state}")
            return out
        cells = []
        for anim, level in zip(self._anims, LEVELS, strict=True):
            full = self._render(anim, persona, t, level, self.state)
            cell = np.ascontiguousarray(
                cv2.resize(full, (full.shape[1] // 2, full.shape[0] // 2),
                           interpolation=cv2.INTER_AREA), dtype=np.uint8)
            _label(cell, f"{level} / {self.state}", 0.55)
            cells.append(cell)
        return np.ascontiguousarray(np.hstack(cells), dtype=np.uint8)


def jpeg(frame: U8, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.asarray(buf).tobytes()
