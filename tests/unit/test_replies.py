"""The layered reply composer: layers by level, acknowledgement first, no banned words."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from avatar_agent.core.config import Config, parse_config
from avatar_agent.core.config_speech import BANNED_REPLY_PHRASES, LevelReplies
from avatar_agent.speech.replies import ReplyComposer, is_apology, layer_of

CFG = Config().replies


def _layers(parts: list) -> list[str]:  # type: ignore[type-arg]
    return [p.layer for p in parts]


def test_calm_customer_gets_a_short_friendly_reply_without_apology() -> None:
    comp = ReplyComposer(CFG, "call-a")
    for turn in range(6):
        parts = comp.compose("calm", 10.0 * turn)
        assert _layers(parts) == ["confirm", "solve"]
        assert not any(is_apology(p.text) for p in parts)
        assert sum(len(p.text.split()) for p in parts) <= 20


def test_unknown_or_missing_level_is_treated_as_calm() -> None:
    comp = ReplyComposer(CFG, "call-a")
    assert _layers(comp.compose(None, 0.0)) == ["confirm", "solve"]
    assert _layers(comp.compose("bored", 0.0)) == ["confirm", "solve"]


def test_dissatisfied_customer_gets_soothe_confirm_solve() -> None:
    parts = ReplyComposer(CFG, "call-b").compose("dissatisfied", 5.0, since=1.0)
    # dissatisfied soothing apologises, so its sentence is tagged as an apology
    assert _layers(parts) == ["apology", "confirm", "solve"]
    assert parts[0].text in CFG.dissatisfied.soothe


def test_furious_start_acknowledges_the_feeling_first() -> None:
    comp = ReplyComposer(CFG, "call-c")
    for t in (12.0, 20.0, 41.9):  # became furious at 12 s: 30 s of acknowledgement
        parts = comp.compose("furious", t, since=12.0)
        assert parts[0].layer == "soothe"
        assert parts[0].text in CFG.furious.acknowledge
        assert not is_apology(parts[0].text)
        assert _layers(parts)[1:] == ["confirm", "solve", "repair"]
    later = comp.compose("furious", 42.5, since=12.0)
    assert later[0].text in CFG.furious.soothe and later[0].layer == "apology"


def test_level_changes_seen_by_the_composer_start_the_acknowledgement_window() -> None:
    comp = ReplyComposer(CFG, "call-d")
    comp.observe_level("calm", 0.0)
    comp.observe_level("furious", 50.0)
    assert comp.compose("furious", 60.0)[0].text in CFG.furious.acknowledge
    assert comp.compose("furious", 81.0)[0].text in CFG.furious.soothe


def test_variants_rotate_within_a_call_and_differ_between_calls() -> None:
    comp = ReplyComposer(CFG, "call-e")
    n = len(CFG.calm.solve)
    seen = [comp.compose("calm", 0.0)[1].text for _ in range(2 * n)]
    assert set(seen) == set(CFG.calm.solve)
    assert seen[:n] == seen[n:]  # a full cycle before any repeat
    assert all(a != b for a, b in zip(seen, seen[1:], strict=False))
    firsts = {ReplyComposer(CFG, f"call-{i}").compose("calm", 0.0)[1].text for i in range(20)}
    assert len(firsts) > 1


def test_same_call_id_gives_the_same_sequence() -> None:
    a, b = ReplyComposer(CFG, "same"), ReplyComposer(CFG, "same")
    for t in range(5):
        assert a.compose("furious", float(t), since=0.0) == b.compose("furious", float(t), 0.0)


def test_no_default_template_contains_a_banned_phrase() -> None:
    for level in ("calm", "dissatisfied", "furious"):
        lr: LevelReplies = getattr(CFG, level)
        for key in ("acknowledge", "soothe", "confirm", "solve", "repair"):
            for text in getattr(lr, key):
                assert "calm down" not in text.lower()
                assert not any(p in text.lower() for p in BANNED_REPLY_PHRASES)


@pytest.mark.parametrize("text", ["Please CALM   down.", "Just relax, it will be fine."])
def test_config_rejects_banned_templates(text: str) -> None:
    with pytest.raises(ValidationError):
        LevelReplies(layers=["soothe"], soothe=[text])


def test_config_rejects_a_layer_without_templates_and_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        LevelReplies(layers=["solve"])
    with pytest.raises(Exception, match="unknown key"):
        parse_config("replies:\n  calm:\n    layers: [solve]\n    solve: [Hi.]\n    joke: [x]\n")


def test_operator_text_is_tagged_only_when_it_apologises() -> None:
    assert layer_of(None, "I'm sorry for the wait.") == "apology"
    assert layer_of(None, "I apologise, that was our mistake.") == "apology"
    assert layer_of(None, "Your parcel arrives tomorrow.") is None
    assert layer_of("solve", "Your parcel arrives tomorrow.") == "solve"
