"""The shipped `support` persona reads at a glance: measured by MediaPipe's face mesh on
frames the server's renderer draws, not judged by eye."""

from __future__ import annotations

import pytest

from avatar_agent.avatar.behavior import Persona, load_persona
from avatar_agent.avatar.preview import render_cell
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.core.config import PROJECT_ROOT
from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.testing.cue_measures import FaceMeasures, apology_frown_gaps, measure_frame

SEEDS = range(6)  # head sway differs per seed: every pose must agree


@pytest.fixture(scope="module")
def support() -> Persona:
    return load_persona(PROJECT_ROOT / "configs" / "behaviors" / "support.yaml")


@pytest.fixture(scope="module")
def tools() -> tuple[AvatarRenderer, FaceAnalyzer]:
    return AvatarRenderer(), FaceAnalyzer(static_image_mode=True, max_faces=1)


def measure(persona: Persona, level: str, state: str, seed: int,
            tools: tuple[AvatarRenderer, FaceAnalyzer]) -> FaceMeasures:
    renderer, faces = tools
    m = measure_frame(render_cell(persona, level, state, renderer, seed=seed), faces)
    assert m is not None, f"no face found at {level}/{state}"
    return m


def test_furious_listening_face_is_larger_than_calm_idle(
        support: Persona, tools: tuple[AvatarRenderer, FaceAnalyzer]) -> None:
    for seed in SEEDS:
        calm = measure(support, "calm", "idle", seed, tools)
        furious = measure(support, "furious", "listening", seed, tools)
        # lean 0.1 -> 0.95: about 10 % in each direction, so the box grows ~20 %
        assert furious.face_box > calm.face_box * 1.12, (seed, calm, furious)


@pytest.mark.parametrize("level", ["calm", "dissatisfied"])
def test_the_apology_frown_draws_the_inner_brows_together(
        level: str, support: Persona, tools: tuple[AvatarRenderer, FaceAnalyzer]) -> None:
    """The same apologising frame with and without the persona's apology frown: the
    mesh puts the inner brow ends closer together with it, at every head pose. (At
    furious the brows already frown 0.7 in every state; the apology adds little.)"""
    assert (support.states.apologising.brow_frown or 0.0) >= 0.4
    gaps = apology_frown_gaps(support, level, SEEDS, tools[0])
    assert min(gaps) > 0.2, gaps
    assert sum(gaps) / len(gaps) > 0.5, gaps
