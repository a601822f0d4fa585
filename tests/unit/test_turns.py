"""Turn-taking from voice activity: barge-in and replies at the end of a turn."""

from __future__ import annotations

from avatar_agent.speech.turns import TurnTaker


def test_speech_while_the_avatar_talks_is_a_barge_in() -> None:
    turns = TurnTaker()
    assert turns.speech_start(1.0, avatar_busy=True) is True
    assert turns.state(avatar_busy=False) == "listening"
    assert turns.speech_start(5.0, avatar_busy=False) is False


def test_a_long_enough_turn_gets_one_reply_after_the_pause() -> None:
    turns = TurnTaker(min_turn_s=0.8, pause_s=0.4)
    turns.speech_start(2.0, avatar_busy=False)
    assert turns.speech_end(3.0) == 3.4
    assert not turns.take_reply(3.3, avatar_busy=False)  # still inside the pause
    assert turns.take_reply(3.4, avatar_busy=False)
    assert not turns.take_reply(3.5, avatar_busy=False)  # only once
    assert turns.state(avatar_busy=True) == "speaking"


def test_short_bursts_get_no_reply() -> None:
    turns = TurnTaker(min_turn_s=0.8, pause_s=0.4)
    turns.speech_start(2.0, avatar_busy=False)
    assert turns.speech_end(2.5) is None
    assert not turns.take_reply(10.0, avatar_busy=False)


def test_speaking_again_within_the_pause_postpones_the_reply() -> None:
    turns = TurnTaker(min_turn_s=0.8, pause_s=0.4)
    turns.speech_start(0.0, avatar_busy=False)
    turns.speech_end(1.0)
    turns.speech_start(1.2, avatar_busy=False)
    assert not turns.take_reply(1.4, avatar_busy=False)
    assert turns.speech_end(1.5) is None  # 0.3 s: too short on its own
    assert not turns.take_reply(2.0, avatar_busy=False)
    turns.speech_start(3.0, avatar_busy=False)
    assert turns.speech_end(4.0) == 4.4
    assert turns.take_reply(4.5, avatar_busy=False)


def test_reply_dropped_when_the_avatar_is_already_talking() -> None:
    turns = TurnTaker(pause_s=0.0)
    turns.speech_start(0.0, avatar_busy=False)
    turns.speech_end(1.0)
    assert not turns.take_reply(1.0, avatar_busy=True)
    assert turns.reply_due is None


def test_auto_reply_off_never_replies_but_still_barges_in() -> None:
    turns = TurnTaker(auto_reply=False)
    assert turns.speech_start(0.0, avatar_busy=True)
    assert turns.speech_end(3.0) is None
    assert not turns.take_reply(9.0, avatar_busy=False)


def test_an_end_without_a_start_is_ignored() -> None:
    turns = TurnTaker()
    assert turns.speech_end(1.0) is None
    assert turns.state(avatar_busy=False) == "idle"


def test_an_onset_holds_and_speech_confirmed_in_time_is_a_barge_in() -> None:
    turns = TurnTaker(confirm_s=0.4)
    assert turns.onset(1.00, avatar_busy=True) and turns.holding
    assert not turns.onset(1.02, avatar_busy=True)  # one hold at a time
    assert not turns.hold_expired(1.39)
    assert turns.speech_start(0.98, avatar_busy=True)  # VAD: speech began just before
    assert not turns.holding
    assert not turns.hold_expired(5.0)  # the barge-in ended the hold, nothing to resume


def test_an_onset_without_speech_expires_once() -> None:
    turns = TurnTaker(confirm_s=0.4)
    assert turns.onset(2.0, avatar_busy=True)
    assert not turns.hold_expired(2.3999)
    assert turns.hold_expired(2.4)
    assert not turns.hold_expired(2.5) and not turns.holding
    assert turns.onset(3.0, avatar_busy=True)  # the next sound holds again


def test_onsets_hold_only_a_talking_avatar_outside_a_customer_turn() -> None:
    turns = TurnTaker()
    assert not turns.onset(0.5, avatar_busy=False)
    turns.speech_start(1.0, avatar_busy=False)
    assert not turns.onset(1.5, avatar_busy=True)  # speech already known: VAD decides
    turns.speech_end(2.0)
    assert turns.onset(2.5, avatar_busy=True)
