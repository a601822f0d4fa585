"""Persona rules, persona by persona, and the persona file's validation and reload."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatar_agent.avatar.behavior import (
    STATES,
    AffectInput,
    PersonaWatcher,
    conversation_state,
    cue_targets,
    load_persona,
    parse_persona,
)
from avatar_agent.core.config import ConfigError
from avatar_agent.core.levels import LEVELS

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "configs" / "behaviors" / "support.yaml"
RECEPTIONIST = REPO / "configs" / "behaviors" / "receptionist.yaml"
ANGER = {"calm": 10.0, "dissatisfied": 50.0, "furious": 90.0}


def at(level: str) -> AffectInput:
    return AffectInput(level=level, anger_index=ANGER[level])


def test_support_leans_in_holds_gaze_and_frowns_as_the_customer_gets_upset() -> None:
    p = load_persona(SUPPORT)
    for state in STATES:
        calm, dis, fur = (cue_targets(p, at(lv), state) for lv in LEVELS)
        assert calm.lean < dis.lean < fur.lean, state
        assert calm.gaze_hold < dis.gaze_hold <= fur.gaze_hold, state
        assert calm.saccade_rate > dis.saccade_rate >= fur.saccade_rate, state
        assert calm.brow_frown < dis.brow_frown <= fur.brow_frown, state
        assert dis.mouth_curve <= 0.0 and fur.mouth_curve <= 0.0, state  # no smile
        assert fur.speech_rate < calm.speech_rate, state
    calm_idle = cue_targets(p, at("calm"), "idle")
    assert calm_idle.mouth_curve > 0.2 and calm_idle.brow_frown == 0.0  # light smile, relaxed
    assert 0.85 <= cue_targets(p, at("furious"), "speaking").speech_rate <= 0.95


def test_support_nods_while_listening_more_when_upset_and_turns_corners_down_to_apologise() -> None:
    p = load_persona(SUPPORT)
    assert cue_targets(p, at("calm"), "idle").nod == 0.0
    assert cue_targets(p, at("calm"), "listening").nod > 0.2
    assert cue_targets(p, at("furious"), "listening").nod > cue_targets(
        p, at("calm"), "listening").nod
    for level in ("dissatisfied", "furious"):
        assert cue_targets(p, at(level), "apologising").mouth_curve < -0.2


def test_receptionist_barely_moves() -> None:
    p = load_persona(RECEPTIONIST)
    for level in LEVELS:
        for state in STATES:
            c = cue_targets(p, at(level), state)
            assert c.lean == 0.0 and c.nod == 0.0 and c.head_tilt == 0.0
            assert c.brow_frown == 0.0 and c.motion <= 0.1
            assert c.blink_rate >= 10 and c.saccade_rate > 0  # still blinks and glances


def test_no_affect_reads_as_a_calm_customer() -> None:
    p = load_persona(SUPPORT)
    assert cue_targets(p, None, "idle") == cue_targets(p, AffectInput(), "idle")
    assert AffectInput.of(None) == AffectInput()


def test_anger_index_blends_between_levels_within_the_level() -> None:
    p = load_persona(SUPPORT)
    leans = [cue_targets(p, AffectInput("dissatisfied", a), "idle").lean
             for a in (40, 50, 60, 70, 80)]
    assert all(b > a for a, b in zip(leans, leans[1:], strict=False)), leans
    # the level still dominates: a furious customer never looks calmer than at its anchor
    # minus one level
    assert cue_targets(p, AffectInput("furious", 60), "idle").lean >= leans[1]


def test_conversation_state() -> None:
    assert conversation_state(True, "apology", False) == "apologising"
    assert conversation_state(True, "soothe", True) == "apologising"
    assert conversation_state(True, "solve", False) == "speaking"
    assert conversation_state(True, None, False) == "speaking"
    assert conversation_state(False, None, True) == "listening"
    assert conversation_state(False, None, False, since_customer_spoke=0.5) == "listening"
    assert conversation_state(False, None, False, since_customer_spoke=3.0) == "idle"
    assert conversation_state(False, None, False) == "idle"


def test_rules_set_and_add() -> None:
    p = parse_persona("""
states:
  idle: {lean: 0.2, mouth_curve: 0.5}
levels:
  furious: {lean: 0.5}
rules:
  - when: {level: furious, state: [speaking]}
    set: {mouth_curve: -0.3}
  - when: {anger_at_least: 95}
    add: {lean: 0.9}
""")
    assert cue_targets(p, AffectInput("furious", 90), "speaking").mouth_curve == -0.3
    assert cue_targets(p, AffectInput("furious", 90), "idle").mouth_curve == 0.5
    assert cue_targets(p, AffectInput("furious", 99), "idle").lean == 1.0  # clamped


def test_invalid_persona_errors_have_lines() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_persona("states:\n  idle:\n    lean: 3\n    smirk: 1\nlevels:\n  angry: {}\n")
    issues = {(i.path, i.line) for i in exc.value.issues}
    assert ("states.idle.smirk", 4) in issues
    assert ("levels.angry", 6) in issues
    with pytest.raises(ConfigError) as exc:
        parse_persona("name: x\nstates:\n  idle:\n    lean: 3\n")
    (issue,) = exc.value.issues
    assert issue.path == "states.idle" and issue.line == 3
    assert "lean must be between 0 and 1" in issue.message


def test_check_config_validates_persona_files(tmp_path: Path) -> None:
    bad = tmp_path / "behaviors" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text("name: x\nstates:\n  idle:\n    brow_frwn: 0.2\n")
    cmd = [sys.executable, "-m", "avatar_agent.cli", "check-config"]
    ok = subprocess.run([*cmd, str(SUPPORT)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout
    res = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "line 4" in res.stderr and "states.idle.brow_frwn" in res.stderr


def test_watcher_reloads_and_keeps_the_last_good_persona(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: one\nstates:\n  idle: {lean: 0.1}\n")
    w = PersonaWatcher(path)
    assert w.persona.name == "one" and w.reloads == 1
    assert not w.poll()  # unchanged
    path.write_text("name: two\nstates:\n  idle: {lean: 0.6}\n")
    os.utime(path, ns=(1, 10**18))  # a new stamp even on coarse-mtime file systems
    assert w.poll() and w.persona.name == "two"
    path.write_text("name: three\nstates:\n  idle: {lean: 7}\n")
    os.utime(path, ns=(1, 2 * 10**18))
    assert not w.poll()
    assert w.persona.name == "two" and w.error is not None and "lean" in w.error
    path.unlink()
    assert not w.poll() and w.persona.name == "two"
