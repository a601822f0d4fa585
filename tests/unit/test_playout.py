"""The call's speech timeline, driven chunk by chunk as the audio track reads it."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_agent.speech.playout import Playout
from avatar_agent.speech.types import PhonemeSpan, Utterance

RATE = 48000


def utt(text: str, seconds: float, value: int = 1000) -> Utterance:
    n = round(seconds * RATE)
    spans = (
        PhonemeSpan("m", 0.0, seconds / 4),
        PhonemeSpan("a", seconds / 4, 3 * seconds / 4),
        PhonemeSpan("m", 3 * seconds / 4, seconds),
    )
    return Utterance(text, np.full(n, value, dtype=np.int16), RATE, spans)


def read_all(p: Playout, start: int, stop: int, chunk: int = 960) -> tuple[np.ndarray, list]:
    pcm, events = [], []
    for s in range(start, stop, chunk):
        a, ev = p.read(s, chunk)
        pcm.append(a)
        events += ev
    return np.concatenate(pcm), events


def test_utterances_play_back_to_back_at_their_samples() -> None:
    p = Playout(RATE)
    a = p.enqueue(utt("one", 0.5, 100), not_before=4800)
    b = p.enqueue(utt("two", 0.25, 200), not_before=0)  # queued after "one", not earlier
    assert (a.start, a.end, b.start) == (4800, 4800 + 24000, 4800 + 24000)
    pcm, events = read_all(p, 0, 48000)
    assert (pcm[:4800] == 0).all()
    assert (pcm[4800:28800] == 100).all()
    assert (pcm[28800:40800] == 200).all()
    assert (pcm[40800:] == 0).all()
    assert [(e.event, e.text, e.sample) for e in events] == [
        ("start", "one", 4800),
        ("end", "one", 28800),
        ("start", "two", 28800),
        ("end", "two", 40800),
    ]
    assert p.pending == 0


def test_mouth_follows_the_same_timeline_as_the_audio() -> None:
    p = Playout(RATE)
    p.enqueue(utt("x", 1.0), not_before=RATE)  # speech from t = 1 s to 2 s
    assert p.mouth_at(RATE // 2) == 0.0
    assert p.mouth_at(RATE + RATE // 2) > 0.5  # the open vowel in the middle
    assert p.mouth_at(RATE + RATE // 8) < p.mouth_at(RATE + RATE // 2)  # bilabial start
    assert p.current_at(RATE + 10) is not None and p.current_at(RATE - 1) is None


def test_the_mouth_of_speech_already_read_is_still_drawn() -> None:
    """The audio track reads ahead of the frame being drawn: a sentence read to its
    end keeps its mouth for frames drawn a little behind, then is forgotten."""
    p = Playout(RATE)
    p.enqueue(utt("x", 1.0), not_before=0)  # speech from 0 to 1 s
    ref = Playout(RATE)
    ref.enqueue(utt("x", 1.0), not_before=0)
    read_all(p, 0, RATE + 4800)  # the audio is read 100 ms past the sentence's end
    for sample in range(0, RATE, 480):
        assert p.mouth_at(sample) == ref.mouth_at(sample)
    assert p.mouth_at(RATE // 2) > 0.5
    read_all(p, RATE + 4800, 3 * RATE)  # long past: the sentence is forgotten
    assert p.mouth_at(RATE // 2) == 0.0 and p.mouth_at(RATE + 10) == 0.0


def test_skipped_speech_still_reports_start_and_end() -> None:
    p = Playout(RATE)
    p.enqueue(utt("lost", 0.1), not_before=960)
    _, events = p.read(0, 48000)  # one long read, e.g. after a stall
    assert [(e.event, e.text) for e in events] == [("start", "lost"), ("end", "lost")]


def test_rate_mismatch_rejected() -> None:
    bad = Utterance("x", np.zeros(10, np.int16), 22050, ())
    with pytest.raises(ValueError, match="22050"):
        Playout(RATE).enqueue(bad, 0)


def test_cut_mid_utterance_silences_audio_and_mouth_after_the_cut() -> None:
    p = Playout(RATE)
    p.enqueue(utt("first", 1.0), 0)
    p.enqueue(utt("second", 1.0), 0)  # queued behind, never heard
    pcm, events = read_all(p, 0, 24000)  # half of "first" has been read
    assert pcm.all() and [(e.event, e.text) for e in events] == [("start", "first")]
    assert p.mouth_at(20000) > 0.0
    cut = 24000 + 960  # the audio track is one 20 ms frame ahead of the clock
    ended = p.cut(cut)
    assert [(e.event, e.text, e.sample, e.interrupted) for e in ended] == [
        ("end", "first", cut, True)
    ]
    pcm, events = read_all(p, 24000, 3 * RATE)
    assert not pcm.any() and events == []
    for sample in range(cut, 3 * RATE, 480):
        assert p.mouth_at(sample) == 0.0
        assert p.current_at(sample) is None
    assert p.pending == 0


def test_cut_keeps_speech_that_already_ended_and_new_speech_plays_after() -> None:
    p = Playout(RATE)
    p.enqueue(utt("done", 0.1), 0)
    p.enqueue(utt("later", 1.0), 9600)  # starts at 0.2 s, not yet read
    read_all(p, 0, 960)
    assert p.cut(9600) == []  # "later" never started: nothing to end
    pcm, events = read_all(p, 960, 19200)
    assert [(e.event, e.text, e.interrupted) for e in events] == [("end", "done", False)]
    assert not pcm[9600 - 960 :].any()
    p.enqueue(utt("reply", 0.1, value=7), 19200)
    pcm, events = read_all(p, 19200, 19200 + 9600)
    assert (pcm[:4800] == 7).all() and not pcm[4800:].any()
    assert [e.event for e in events] == ["start", "end"]


def test_cut_ends_an_utterance_that_started_inside_the_read_ahead() -> None:
    p = Playout(RATE)
    p.enqueue(utt("edge", 1.0), 1000)
    p.read(0, 1920)  # read up to 1920: "edge" started at 1000
    ended = p.cut(900)  # the clock was still before its start
    assert [(e.text, e.sample, e.interrupted) for e in ended] == [("edge", 1000, True)]
    assert not p.read(1920, 960)[0].any()


def speech(text: str, seconds: float) -> Utterance:
    """An utterance whose every sample differs, with uneven phonemes, so any slip in
    where the audio or the mouth resumes shows."""
    n = round(seconds * RATE)
    pcm = (np.arange(n) % 30000 + 1).astype(np.int16)
    spans = (
        PhonemeSpan("h", 0.0, 0.07),
        PhonemeSpan("ɛ", 0.07, 0.19),
        PhonemeSpan("l", 0.19, 0.26),
        PhonemeSpan("oʊ", 0.26, 0.41),
        PhonemeSpan("m", 0.41, 0.5),
        PhonemeSpan("a", 0.5, seconds),
    )
    return Utterance(text, pcm, RATE, spans)


def test_hold_silences_audio_and_mouth_from_the_hold_sample() -> None:
    p = Playout(RATE)
    p.enqueue(speech("one", 1.0), 0)
    p.enqueue(speech("two", 0.5), 0)
    hold = 20000  # not a frame boundary: the audio track's reads decide, sample by sample
    pcm, events = read_all(p, 0, hold, chunk=500)
    assert pcm.all() and [e.event for e in events] == ["start"]
    assert p.hold(hold) == hold and p.held
    assert p.pending == 2  # parked, not gone
    for sample in range(hold, 3 * RATE, 97):
        assert p.mouth_at(sample) == 0.0 and p.current_at(sample) is None
    assert p.mouth_at(hold - 1) > 0.0
    pcm, events = read_all(p, hold, 3 * RATE, chunk=480)
    assert not pcm.any() and events == []  # no end: the sentence is only paused
    assert p.hold(hold + 5000) == hold  # holding again changes nothing


def test_hold_never_takes_back_audio_already_read() -> None:
    p = Playout(RATE)
    p.enqueue(speech("one", 1.0), 0)
    read_all(p, 0, 960 * 10)  # the audio track reads one frame ahead of the clock
    assert p.hold(960 * 9 + 300) == 960 * 10


def test_resume_plays_exactly_the_rest_with_the_same_mouth() -> None:
    original = speech("one", 1.0)
    after = speech("two", 0.5)
    p = Playout(RATE)
    p.enqueue(original, 0)
    p.enqueue(after, 0)
    ref = Playout(RATE)  # the same speech, never held
    ref.enqueue(original, 0)
    ref.enqueue(after, 0)
    hold, resume = 21_111, 40_000
    mouth_ref = [ref.mouth_at(s) for s in range(0, 72_000)]
    played, ev1 = read_all(p, 0, hold, chunk=1)  # sample by sample
    mouth_played = [p.mouth_at(s) for s in range(hold)]
    p.hold(hold)
    gap, ev2 = read_all(p, hold, resume, chunk=resume - hold)
    assert p.resume(resume) == resume and not p.held
    n = 72_000 - hold
    mouth_rest = [p.mouth_at(s) for s in range(resume, resume + n)]
    rest, ev3 = read_all(p, resume, resume + n, chunk=333)
    assert not gap.any()
    heard = np.concatenate([played, rest[:n]])
    assert np.array_equal(heard, np.concatenate([original.pcm, after.pcm]))
    assert mouth_played + mouth_rest == mouth_ref  # lip-sync: the same curve, shifted
    events = [(e.event, e.text, e.sample) for e in ev1 + ev2 + ev3]
    assert events == [
        ("start", "one", 0),
        ("end", "one", resume + 48000 - hold),  # one start, one end: no second start
        ("start", "two", resume + 48000 - hold),
        ("end", "two", resume + n),
    ]
    assert p.pending == 0


def test_speech_enqueued_while_held_waits_for_the_resume() -> None:
    p = Playout(RATE)
    p.enqueue(speech("one", 0.5), 0)
    read_all(p, 0, 9600)
    p.hold(9600)
    p.enqueue(speech("late", 0.25), 0)  # synthesis went on during the hold
    assert p.pending == 2
    pcm, events = read_all(p, 9600, 48000)
    assert not pcm.any() and events == []
    start = p.resume(48000)
    _, events = read_all(p, 48000, 48000 + 48000)
    assert [(e.event, e.text, e.sample) for e in events] == [
        ("end", "one", start + 24000 - 9600),
        ("start", "late", start + 24000 - 9600),
        ("end", "late", start + 24000 - 9600 + 12000),
    ]


def test_cut_while_held_drops_the_parked_speech_and_ends_it_interrupted() -> None:
    p = Playout(RATE)
    p.enqueue(speech("one", 1.0), 0)
    p.enqueue(speech("two", 1.0), 0)  # never started: ends silently
    read_all(p, 0, 9600)
    p.hold(9600)
    ended = p.cut(12000)  # the VAD confirmed speech a little later
    assert [(e.event, e.text, e.sample, e.interrupted) for e in ended] == [
        ("end", "one", 9600, True)
    ]
    assert not p.held and p.pending == 0
    assert p.resume(20000) == 20000  # nothing parked any more: nothing plays
    pcm, events = read_all(p, 9600, 96000)
    assert not pcm.any() and events == []


def test_hold_between_sentences_parks_the_next_one_unstarted() -> None:
    p = Playout(RATE)
    p.enqueue(speech("one", 0.1), 0)
    p.enqueue(speech("two", 0.1), 9600)
    _, events = read_all(p, 0, 7200)
    p.hold(7200)  # "one" is over by 4800 and ends as usual
    _, ev = read_all(p, 7200, 20000, chunk=12800)
    assert [(e.event, e.text) for e in events + ev] == [("start", "one"), ("end", "one")]
    p.resume(20000)
    _, ev = read_all(p, 20000, 40000)
    assert [(e.event, e.text, e.sample) for e in ev] == [
        ("start", "two", 20000), ("end", "two", 24800)
    ]
