"""The tuning page's preview frames: views, the cycle's order, the sample line's mouth."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.avatar.behavior import load_persona
from avatar_agent.avatar.live_preview import CYCLE_S, LINE_GAP_S, PreviewStream, jpeg
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.core.config import PROJECT_ROOT
from avatar_agent.speech.lipsync import MouthTimeline
from avatar_agent.speech.types import PhonemeSpan


@pytest.fixture(scope="module")
def renderer() -> AvatarRenderer:
    return AvatarRenderer()


def line() -> MouthTimeline:
    spans = [PhonemeSpan(p, i * 0.1, i * 0.1 + 0.1) for i, p in enumerate("sɔɹiː")]
    return MouthTimeline(spans, 0.5)


def test_views_and_their_sizes(renderer: AvatarRenderer) -> None:
    persona = load_persona(PROJECT_ROOT / "configs" / "behaviors" / "support.yaml")
    single = PreviewStream(renderer, None, "single", "furious", "listening")
    side = PreviewStream(renderer, None, "side", state="apologising")
    assert single.frame(persona, 0.0).shape == (480, 640, 3)
    assert side.frame(persona, 0.0).shape == (240, 960, 3)
    assert jpeg(side.frame(persona, 0.1))[:2] == b"\xff\xd8"


def test_the_cycle_walks_levels_and_states(renderer: AvatarRenderer) -> None:
    s = PreviewStream(renderer, None, "cycle")
    assert s.showing(0.0) == ("calm", "idle")
    assert s.showing(CYCLE_S * 3 + 0.1) == ("calm", "apologising")
    assert s.showing(CYCLE_S * 4 + 0.1) == ("dissatisfied", "idle")
    assert s.showing(CYCLE_S * 12 + 0.1) == ("calm", "idle")


def test_the_mouth_follows_the_sample_line_only_while_speaking(renderer: AvatarRenderer) -> None:
    tl = line()
    s = PreviewStream(renderer, tl, "single", state="apologising")
    times = np.arange(0.0, 2 * (tl.duration + LINE_GAP_S), 0.02)
    opening = [s.mouth_at(float(t), "apologising") for t in times]
    assert max(opening) > 0.2
    period = tl.duration + LINE_GAP_S
    assert s.mouth_at(0.25, "apologising") == pytest.approx(s.mouth_at(0.25 + period,
                                                                         "apologising"))
    assert s.mouth_at(tl.duration + LINE_GAP_S / 2, "apologising") == 0.0
    assert all(s.mouth_at(float(t), "idle") == 0.0 for t in times)


def test_bad_choices_are_refused(renderer: AvatarRenderer) -> None:
    for kwargs in ({"view": "grid"}, {"level": "livid"}, {"state": "sleeping"}):
        with pytest.raises(ValueError):
            PreviewStream(renderer, None, **kwargs)
