"""Editing a persona file from the tuning page: pure text in, text out."""

from __future__ import annotations

import pytest

from avatar_agent.avatar.behavior import CUE_NAMES, parse_persona
from avatar_agent.avatar.persona_edit import (
    Change,
    EditError,
    apply_changes,
    controls,
    parse_changes,
)
from avatar_agent.core.config import PROJECT_ROOT, ConfigError

SUPPORT = (PROJECT_ROOT / "configs" / "behaviors" / "support.yaml").read_text()


def test_no_change_gives_the_same_bytes() -> None:
    assert apply_changes(SUPPORT, []) == SUPPORT


def test_a_change_moves_one_value_and_keeps_every_comment() -> None:
    out = apply_changes(SUPPORT, [Change("levels.furious.lean", 0.8)])
    before, after = SUPPORT.splitlines(), out.splitlines()
    assert len(before) == len(after)
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert diff == [("    lean: 0.7", "    lean: 0.8")]
    assert parse_persona(out).levels.furious.lean == 0.8


def test_new_keys_go_into_empty_and_flow_maps() -> None:
    out = apply_changes(SUPPORT, [Change("levels.calm.nod", 0.1),
                                  Change("rules.0.add.brow_frown", 0.2),
                                  Change("anchors.furious", 80)])
    p = parse_persona(out)
    assert p.levels.calm.nod == 0.1 and p.rules[0].add.brow_frown == 0.2
    assert p.anchors.furious == 80
    assert "# Apologising to an upset customer" in out


def test_none_removes_a_value() -> None:
    out = apply_changes(SUPPORT, [Change("states.listening.nod", None)])
    assert parse_persona(out).states.listening.nod is None


@pytest.mark.parametrize(("change", "field", "words"), [
    (Change("states.idle.lean", 5.0), "states.idle.lean", "between 0 and 1"),
    (Change("levels.furious.speech_rate", 0.9), "levels.furious.speech_rate", "-0.6 and 0.6"),
    (Change("states.dozing.lean", 0.1), "states.dozing.lean", "states are"),
    (Change("states.idle.wiggle", 0.1), "states.idle.wiggle", "unknown cue"),
    (Change("rules.7.set.lean", 0.1), "rules.7.set.lean", "1 rules"),
    (Change("emotions.bored.lean", 0.1), "emotions.bored.lean", "no such emotion"),
    (Change("name", 1.0), "name", "not a value"),
    (Change("anchors.furious", 120.0), "anchors.furious", "between 0 and 100"),
])
def test_a_bad_change_is_refused_with_its_field(change: Change, field: str, words: str) -> None:
    with pytest.raises(EditError) as err:
        apply_changes(SUPPORT, [change])
    assert err.value.field == field and words in str(err.value)


def test_the_whole_file_is_checked_as_check_config_checks_it() -> None:
    with pytest.raises(ConfigError) as err:  # anchors must rise
        apply_changes(SUPPORT, [Change("anchors.calm", 90)])
    assert any(i.path == "anchors" for i in err.value.issues)


def test_amounts_beyond_a_cues_span_are_refused_in_files_too() -> None:
    bad = SUPPORT.replace("  furious:\n    lean: 0.7", "  furious:\n    lean: 1.7")
    with pytest.raises(ConfigError, match="lean may add between -1 and 1"):
        parse_persona(bad)


def test_controls_cover_every_cue_with_schema_ranges() -> None:
    groups = {g["path"]: g for g in controls(parse_persona(SUPPORT))}
    assert {"states.idle", "states.apologising", "levels.furious", "emotions.sad",
            "rules.0.set", "rules.0.add", "anchors"} <= set(groups)
    idle = {c["cue"]: c for c in groups["states.idle"]["controls"]}
    assert list(idle) == list(CUE_NAMES)
    assert (idle["lean"]["min"], idle["lean"]["max"], idle["lean"]["value"]) == (0.0, 1.0, 0.1)
    assert idle["head_tilt"]["unit"] == "degrees"
    furious = {c["cue"]: c for c in groups["levels.furious"]["controls"]}
    assert (furious["lean"]["min"], furious["lean"]["max"]) == (-1.0, 1.0)
    assert furious["head_tilt"]["value"] is None  # left to the state's value
    assert [c["value"] for c in groups["anchors"]["controls"]] == [15, 50, 85]


def test_request_bodies() -> None:
    assert parse_changes([{"path": "states.idle.lean", "value": 1}]) == [
        Change("states.idle.lean", 1.0)]
    for bad in ({"path": "x"}, [{"value": 1}], [{"path": "x", "value": "1"}],
                [{"path": "x", "value": True}]):
        with pytest.raises(EditError):
            parse_changes(bad)


def test_an_unset_state_cue_shows_what_it_inherits() -> None:
    groups = {g["path"]: g for g in controls(parse_persona(SUPPORT))}
    listening = {c["cue"]: c for c in groups["states.listening"]["controls"]}
    assert listening["blink_rate"]["value"] is None
    assert listening["blink_rate"]["inherited"] == 16  # idle's
    assert listening["lean"]["value"] == 0.25


def test_the_controls_come_from_the_schemas_fields() -> None:
    from avatar_agent.avatar.behavior import STATES
    from avatar_agent.avatar.persona_edit import SCHEMA_CUES, SCHEMA_LEVELS, SCHEMA_STATES
    from avatar_agent.core.levels import LEVELS

    assert SCHEMA_CUES == CUE_NAMES  # what the animator reads, in the same order
    assert SCHEMA_STATES == STATES and tuple(LEVELS) == SCHEMA_LEVELS
