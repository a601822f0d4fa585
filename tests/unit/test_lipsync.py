"""Phoneme timings → jaw-opening curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar_agent.speech.lipsync import MAX_SPEED, MouthTimeline, mouth_curve, phoneme_opening
from avatar_agent.speech.types import PhonemeSpan


def spans(*items: tuple[str, float]) -> list[PhonemeSpan]:
    """Back-to-back spans from (phoneme, length) pairs."""
    out, t = [], 0.0
    for phoneme, length in items:
        out.append(PhonemeSpan(phoneme, t, t + length))
        t += length
    return out


# "hello, mama" roughly as Piper times it, with BOS/EOS and a comma pause
HELLO = spans(("^", 0.05), ("h", 0.06), ("ə", 0.07), ("l", 0.06), ("ˈoʊ", 0.16), (",", 0.2),
              (" ", 0.02), ("m", 0.08), ("ˈɑ", 0.14), ("m", 0.08), ("ə", 0.1), (".", 0.15),
              ("$", 0.05))
HELLO_END = HELLO[-1].end


def centre(span: PhonemeSpan) -> float:
    return (span.start + span.end) / 2


@pytest.mark.parametrize("phoneme", ["p", "b", "m", "ˈm", "mː"])
def test_bilabials_close_the_mouth(phoneme: str) -> None:
    assert phoneme_opening(phoneme) == 0.0


@pytest.mark.parametrize("phoneme", ["a", "ɑ", "æ", "ˈɑː", "aɪ"])
def test_open_vowels_open_wide(phoneme: str) -> None:
    assert phoneme_opening(phoneme) >= 0.8


def test_openings_are_ordered_by_articulation() -> None:
    assert phoneme_opening("ɑ") > phoneme_opening("ə") > phoneme_opening("i") > phoneme_opening("f")
    assert 0.0 < phoneme_opening("f") < 0.2
    assert 0.35 <= phoneme_opening("ə") <= 0.65


@pytest.mark.parametrize("phoneme", [" ", "", "^", "$", ",", ".", "!", "?", "ˈ", "ː", "—"])
def test_silence_and_marks_are_closed(phoneme: str) -> None:
    assert phoneme_opening(phoneme) == 0.0


@pytest.mark.parametrize("phoneme", ["Q", "ʘ", "ǃ", "x̩", "🙂", "#"])
def test_unknown_symbols_stay_in_range(phoneme: str) -> None:
    assert 0.0 <= phoneme_opening(phoneme) <= 1.0


def test_unknown_letter_is_a_sound_not_silence() -> None:
    assert phoneme_opening("Q") > 0.0


def test_bilabial_centre_is_closed_between_open_vowels() -> None:
    phon = spans(("ɑ", 0.15), ("m", 0.08), ("ɑ", 0.15))
    tl = MouthTimeline(phon, 0.38)
    assert tl.opening_at(centre(phon[1])) == pytest.approx(0.0, abs=1e-6)
    assert tl.opening_at(centre(phon[0])) > 0.6
    assert tl.opening_at(centre(phon[2])) > 0.6


def test_held_open_vowel_reaches_high_opening() -> None:
    phon = spans(("^", 0.05), ("h", 0.05), ("ˈɑː", 0.3), ("$", 0.05))
    tl = MouthTimeline(phon, 0.45)
    assert tl.opening_at(centre(phon[2])) >= 0.85


def test_pause_closes_but_word_gap_does_not() -> None:
    phon = spans(("ɑ", 0.15), (",", 0.3), ("ɑ", 0.15), (" ", 0.02), ("ɑ", 0.15))
    tl = MouthTimeline(phon, 0.77)
    assert tl.opening_at(centre(phon[1])) == pytest.approx(0.0, abs=1e-6)
    assert tl.opening_at(centre(phon[3])) > 0.5


def test_silence_only_utterance_is_closed_everywhere() -> None:
    curve = mouth_curve(spans(("^", 0.1), (" ", 0.5), ("$", 0.1)), 0.7, 30.0)
    assert np.all(curve == 0.0)


def test_closed_outside_the_utterance() -> None:
    tl = MouthTimeline(HELLO, HELLO_END)
    for t in (-1.0, -1e-6, HELLO_END + 1e-6, HELLO_END + 5.0):
        assert tl.opening_at(t) == 0.0
    assert tl.opening_at(0.0) == 0.0


def test_values_stay_in_unit_range() -> None:
    rng = np.random.default_rng(0)
    symbols = ["ɑ", "a", "m", "p", "i", "ə", " ", ",", "ˈ", "Q", "tʃ", "oʊ"]
    phon, t = [], 0.0
    for _ in range(200):
        length = float(rng.uniform(0.005, 0.3))
        phon.append(PhonemeSpan(str(rng.choice(symbols)), t, t + length))
        t += length
    tl = MouthTimeline(phon, t)
    values = [tl.opening_at(x) for x in np.linspace(-0.5, t + 0.5, 5000)]
    assert min(values) >= 0.0 and max(values) <= 1.0
    assert max(values) > 0.5


def test_curve_length_matches_frame_count() -> None:
    for duration, fps in ((HELLO_END, 30.0), (1.0, 30.0), (0.999, 25.0), (2.345, 60.0)):
        assert len(mouth_curve(HELLO, duration, fps)) == math.ceil(duration * fps)
    curve = mouth_curve(HELLO, HELLO_END, 30.0)
    assert curve.dtype == np.float32


def test_curve_samples_the_timeline_at_frame_times() -> None:
    tl = MouthTimeline(HELLO, HELLO_END)
    curve = mouth_curve(HELLO, HELLO_END, 30.0)
    for k in (0, 3, 10, 20, len(curve) - 1):
        assert curve[k] == pytest.approx(tl.opening_at(k / 30.0), abs=1e-6)


def test_frame_to_frame_change_is_bounded() -> None:
    fast = spans(*[(p, 0.045) for p in ["ɑ", "m", "a", "p", "æ", "b"] * 10])
    curve = mouth_curve(fast, fast[-1].end, 30.0)
    steps = np.abs(np.diff(curve))
    assert steps.max() <= MAX_SPEED / 30.0 + 1e-6
    assert steps.max() < 0.35
    # the jaw still moves: fast syllables are not smoothed into a constant
    assert curve.max() - curve[5:-5].min() > 0.2


def test_speech_moves_the_mouth_and_ends_closed() -> None:
    curve = mouth_curve(HELLO, HELLO_END, 30.0)
    assert curve.max() > 0.6
    assert curve[-1] < 0.05


def test_spans_beyond_duration_are_clipped() -> None:
    tl = MouthTimeline(spans(("ɑ", 0.5), ("ɑ", 0.5)), 0.6)
    assert tl.opening_at(0.6) == 0.0
    assert tl.opening_at(0.3) > 0.5


def test_empty_and_invalid_input() -> None:
    assert MouthTimeline([], 1.0).opening_at(0.5) == 0.0
    assert len(mouth_curve([], 0.0, 30.0)) == 0
    with pytest.raises(ValueError):
        MouthTimeline([], -1.0)
    with pytest.raises(ValueError):
        mouth_curve(HELLO, 1.0, 0.0)
