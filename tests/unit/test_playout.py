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
    assert p.speaking_at(RATE + 10) and not p.speaking_at(RATE - 1)


def test_skipped_speech_still_reports_start_and_end() -> None:
    p = Playout(RATE)
    p.enqueue(utt("lost", 0.1), not_before=960)
    _, events = p.read(0, 48000)  # one long read, e.g. after a stall
    assert [(e.event, e.text) for e in events] == [("start", "lost"), ("end", "lost")]


def test_clear_drops_everything_queued() -> None:
    p = Playout(RATE)
    p.enqueue(utt("a", 1.0), 0)
    p.enqueue(utt("b", 1.0), 0)
    assert [s.utterance.text for s in p.clear()] == ["a", "b"]
    pcm, events = p.read(0, 960)
    assert not pcm.any() and not events


def test_rate_mismatch_rejected() -> None:
    bad = Utterance("x", np.zeros(10, np.int16), 22050, ())
    with pytest.raises(ValueError, match="22050"):
        Playout(RATE).enqueue(bad, 0)
