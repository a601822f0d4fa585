from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from avatar_agent.affect.live import CallAffect
from avatar_agent.affect.script import load_script, parse_script
from avatar_agent.core.aio import InlineExecutor
from avatar_agent.core.clock import VirtualClock
from avatar_agent.core.config import AffectConfig, LevelConfig, PerceptionConfig
from avatar_agent.core.events import AffectUpdate, Event, LevelChanged
from avatar_agent.core.metrics import Metrics
from avatar_agent.perception.live import CallPerception

SCRIPT = """
- {at: 0, anger_index: 10}
- {at: 4, anger_index: 85, emotion: angry}
- {at: 10, anger_index: 20, arousal: 0.3, valence: 0.2, emotion: calm}
"""


def test_steps_hold_until_the_next_one() -> None:
    s = parse_script(SCRIPT)
    assert s.output_at(-1.0).anger_index == pytest.approx(10)
    assert s.output_at(3.99).anger_index == pytest.approx(10)
    assert s.output_at(4.0).anger_index == pytest.approx(85)
    assert s.output_at(4.0).emotion == "angry"
    late = s.output_at(100.0)
    assert late.anger_index == pytest.approx(20)
    assert late.emotion == "calm"
    assert (late.arousal, late.valence) == (0.3, 0.2)
    for t in (0.0, 5.0, 11.0):
        assert sum(s.output_at(t).probs) == pytest.approx(1.0)


def test_defaults_follow_the_anger_index() -> None:
    s = parse_script("- {at: 0, anger_index: 0}\n- {at: 1, anger_index: 90}")
    calm, angry = s.output_at(0), s.output_at(2)
    assert calm.emotion == "neutral" and angry.emotion == "angry"
    assert angry.arousal > calm.arousal and angry.valence < calm.valence


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{at: 0}", "list of steps"),
        ("[]", "at least one step"),
        ("- {at: 0, anger_index: 120}", "step 1: anger_index"),
        ("- {at: 0, anger_index: 1, emotion: bored}", "unknown emotion 'bored'"),
        ("- {at: 0, anger_index: 1, mood: x}", "step 1: mood"),
        ("- {at: 2, anger_index: 1}\n- {at: 1, anger_index: 2}", "must increase"),
        ("- [", "not valid YAML"),
    ],
)
def test_bad_scripts_are_rejected_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_script(text, "demo.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="affect script not found"):
        load_script(tmp_path / "nope.yaml")


async def test_a_call_driven_by_a_script_reaches_furious() -> None:
    """The scripted outputs go through the same smoothing, levels and outlets as the model's."""
    clock = VirtualClock()
    sent: list[Event] = []
    published: list[Event] = []
    stored: list[dict[str, Any]] = []

    async def store(points: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        stored.extend(points)

    cfg = AffectConfig(rate_hz=20, smoothing_s=0.2, level=LevelConfig(min_dwell_s=0.1))
    perception = CallPerception(PerceptionConfig(), InlineExecutor(), Metrics(), clock.now,
                                clock=clock)
    affect = CallAffect(
        "c1", cfg, None, perception, Metrics(), clock.now,
        send=sent.append, publish=published.append, store=store,
        script=parse_script("- {at: 0, anger_index: 5}\n- {at: 0.5, anger_index: 95}"),
        clock=clock,
    )
    task = asyncio.create_task(affect.run())
    await clock.advance(3.0)  # 3 s of media time, in virtual time
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    updates = [e for e in sent if isinstance(e, AffectUpdate)]
    assert len(updates) == 60  # 20 Hz for 3 s, none lost or doubled
    assert updates[0].level == "calm" and updates[-1].level == "furious"
    assert any(isinstance(e, LevelChanged) and e.level == "furious" for e in published)
    assert stored and stored[-1]["level"] == "furious"  # the curve is flushed on the way out


def test_engine_or_script_not_both() -> None:
    perception = CallPerception(PerceptionConfig(), InlineExecutor(), Metrics(), lambda: 0.0)
    with pytest.raises(ValueError, match="either the engine or a script"):
        CallAffect("c", AffectConfig(), None, perception, Metrics(), lambda: 0.0,
                   send=print, publish=print, store=print)
