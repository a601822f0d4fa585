"""PiperTTS against the real bundled voice: audio format, phoneme timing, streaming."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from avatar_agent.speech.sentences import split_sentences
from avatar_agent.speech.tts import (
    PiperTTS,
    TTSEngine,
    spans_from_alignment,
    stream_sentences,
    to_int16,
)
from avatar_agent.speech.types import PhonemeSpan, Utterance

HELLO = "Hello, how can I help you today?"
VOWELS = set("aeiouæɑɒɔəɛɜɚɪʊʌɐɝɘɵɤøœyʏɨʉɯᵻ")
PAUSES = set("^$,.!?;:")
MODIFIERS = set("ˈˌːˑʲʰʷ˞")


@pytest.fixture(scope="module")
def engine() -> PiperTTS:
    return PiperTTS()


@pytest.fixture(scope="module")
def hello(engine: PiperTTS) -> Utterance:
    (utterance,) = engine.synthesize(HELLO)
    return utterance


def rms(pcm: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean((pcm.astype(np.float64) / 32768.0) ** 2))) if pcm.size else 0.0


def assert_tiles(utterance: Utterance) -> None:
    spans = utterance.phonemes
    assert spans, "no phoneme spans"
    assert spans[0].start == 0.0
    for before, after in zip(spans, spans[1:], strict=False):
        assert before.end == after.start
    for span in spans:
        assert span.start <= span.end
    assert abs(spans[-1].end - utterance.duration) <= 1.0 / utterance.sample_rate


def test_output_format(engine: PiperTTS, hello: Utterance) -> None:
    assert isinstance(engine, TTSEngine)
    assert engine.output_rate == 48000
    assert hello.sample_rate == 48000
    assert hello.pcm.dtype == np.int16
    assert hello.pcm.ndim == 1
    assert hello.text == HELLO


def test_duration_and_loudness(hello: Utterance) -> None:
    assert 0.8 <= hello.duration <= 4.0
    assert rms(hello.pcm) > 0.03
    # Held below full scale: no sample sits at the int16 rails.
    assert int(np.max(np.abs(hello.pcm.astype(np.int32)))) < 32767


def test_spans_tile_the_audio(hello: Utterance) -> None:
    assert_tiles(hello)
    assert hello.phonemes[-1].end == hello.duration


def test_phonemes_are_plausible(hello: Utterance) -> None:
    symbols = [span.phoneme for span in hello.phonemes]
    vowels = [s for s in symbols if s in VOWELS]
    # Nine syllables; diphthongs come as two vowel symbols.
    assert 9 <= len(vowels) <= 20
    assert 20 <= len(symbols) <= 60
    assert symbols[0] == "^" and symbols[-1] == "$"
    assert not MODIFIERS & set(symbols), "stress/length marks should be folded away"


def test_alignment_follows_the_audio(engine: PiperTTS) -> None:
    text = (
        "I'm sorry to hear that your order arrived damaged. "
        "Let me check the tracking number for you, it should only take a moment."
    )
    by_kind: dict[str, list[float]] = {"vowel": [], "pause": [], "consonant": []}
    for utterance in engine.sentences(text):
        rate = utterance.sample_rate
        for span in utterance.phonemes:
            a, b = round(span.start * rate), round(span.end * rate)
            if b - a < rate // 200:
                continue
            kind = (
                "vowel"
                if span.phoneme in VOWELS
                else "pause"
                if span.phoneme in PAUSES
                else "consonant"
            )
            if span.phoneme != " ":
                by_kind[kind].append(rms(utterance.pcm[a:b]))
    vowel, pause, consonant = (float(np.mean(by_kind[k])) for k in ("vowel", "pause", "consonant"))
    assert vowel > 5 * pause
    assert vowel > consonant


def test_two_sentences_in_order(engine: PiperTTS) -> None:
    utterances = engine.synthesize("Thanks for calling.  Is your order number handy?")
    assert [u.text for u in utterances] == ["Thanks for calling.", "Is your order number handy?"]
    for utterance in utterances:
        assert_tiles(utterance)


def test_title_abbreviation_stays_one_sentence(engine: PiperTTS) -> None:
    (utterance,) = engine.synthesize("Dr. Smith will call you back.")
    # espeak-ng would read the title's dot as a sentence end, with its own BOS/EOS.
    assert [s.phoneme for s in utterance.phonemes].count("$") == 1
    assert_tiles(utterance)


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n", "---"])
def test_nothing_to_say(engine: PiperTTS, text: str) -> None:
    assert engine.synthesize(text) == []


def test_speed_shortens_audio(engine: PiperTTS) -> None:
    text = "Your replacement will be shipped within three business days."
    fast = PiperTTS(speed=1.3)
    normal_s = sum(u.duration for u in engine.synthesize(text))
    fast_s = sum(u.duration for u in fast.synthesize(text))
    assert fast_s < 0.9 * normal_s
    with pytest.raises(ValueError):
        PiperTTS(speed=0.0)


def _mean_duration(engine: PiperTTS, text: str, speed: float | None = None, n: int = 3) -> float:
    # Piper's duration noise moves a sentence by several per cent from run to run.
    return sum(sum(u.duration for u in engine.synthesize(text, speed)) for _ in range(n)) / n


def test_per_call_speed_without_reloading_the_voice(engine: PiperTTS) -> None:
    text = "Your replacement will be shipped within three business days."
    voice = engine._voice
    normal = _mean_duration(engine, text)
    slow = _mean_duration(engine, text, 0.8)
    assert engine._voice is voice and engine.speed == 1.0
    assert 1.08 < slow / normal < 1.35  # 0.8x speed
    for u in engine.synthesize(text, 0.8):  # the phoneme timeline still tiles the audio
        assert u.phonemes[0].start == 0.0 and u.phonemes[-1].end == u.duration
    # the engine's own speed is unchanged for the next text
    assert 0.95 < _mean_duration(engine, text) / normal < 1.05
    with pytest.raises(ValueError):
        engine.synthesize(text, speed=-1.0)


async def test_stream_sentences_passes_the_speed(engine: PiperTTS) -> None:
    recorder = RecordingEngine(engine)
    text = "Thank you for waiting. Your order ships tomorrow."
    got = [u async for u in stream_sentences(recorder, text, None, 0.92)]
    assert recorder.speeds == [0.92] and len(got) == 2


def test_long_run_on_text_is_cut(engine: PiperTTS) -> None:
    text = ", ".join(f"item number {i}" for i in range(40)) + "."
    utterances = engine.synthesize(text)
    assert len(utterances) >= 2
    assert " ".join(u.text for u in utterances) == text
    for utterance in utterances:
        assert_tiles(utterance)


def test_missing_alignment_spreads_evenly(
    engine: PiperTTS, caplog: pytest.LogCaptureFixture
) -> None:
    # A raw phoneme block with a symbol the voice lacks makes Piper's alignment fail.
    with caplog.at_level(logging.WARNING, logger="avatar_agent.speech.tts"):
        (utterance,) = engine.synthesize("[[həlˈoʊʭ wˈɜːld]]")
    assert "no phoneme alignment" in caplog.text
    assert_tiles(utterance)
    lengths = {round(s.end - s.start, 3) for s in utterance.phonemes if s.phoneme not in "oɜ"}
    assert len(lengths) <= 2  # even spread, up to one sample of rounding


def test_missing_files_raise(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        PiperTTS(missing)
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"voice\.onnx\.json"):
        PiperTTS(model)


def test_model_without_durations_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    tensor = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "no_durations",
        [tensor("input", TensorProto.FLOAT, [1])],
        [tensor("output", TensorProto.FLOAT, [1])],
    )
    model = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    (tmp_path / "plain.onnx.json").write_text("{}")
    with pytest.raises(RuntimeError, match="alignments are unavailable"):
        PiperTTS(model)


class RecordingEngine:
    """Passes through a real engine, noting which threads run it and how far it got."""

    def __init__(self, inner: PiperTTS) -> None:
        self.inner = inner
        self.output_rate = inner.output_rate
        self.threads: set[int] = set()
        self.produced = 0
        self.speeds: list[float | None] = []

    def sentences(self, text: str, speed: float | None = None) -> Iterator[Utterance]:
        self.speeds.append(speed)
        for utterance in self.inner.sentences(text, speed):
            self.threads.add(threading.get_ident())
            self.produced += 1
            yield utterance


async def test_stream_sentences_matches_and_stays_off_the_loop(engine: PiperTTS) -> None:
    text = "Thanks for waiting. I found your order. It ships tomorrow."
    recorder = RecordingEngine(engine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        texts = [u.text async for u in stream_sentences(recorder, text, pool)]
    assert texts == [u.text for u in engine.synthesize(text)]
    assert threading.get_ident() not in recorder.threads
    assert [u async for u in stream_sentences(engine, "  ")] == []


async def test_stream_sentences_stops_when_consumer_stops(engine: PiperTTS) -> None:
    text = " ".join(f"This is sentence number {i}." for i in range(8))
    recorder = RecordingEngine(engine)
    stream = stream_sentences(recorder, text)
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    assert first.text == "This is sentence number 0."
    await stream.aclose()
    await asyncio.sleep(1.0)
    assert recorder.produced <= 2  # the one consumed and at most one prefetched

    recorder = RecordingEngine(engine)
    got: list[str] = []
    first_arrived = asyncio.Event()

    async def consume() -> None:
        async for utterance in stream_sentences(recorder, text):
            got.append(utterance.text)
            first_arrived.set()

    task = asyncio.create_task(consume())
    await first_arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.0)
    assert recorder.produced <= len(got) + 1


def test_spans_stretch_over_mismatched_audio() -> None:
    spans = spans_from_alignment(["^", "a", "b", "$"], [100, 300, 500, 100], 1100, 1000)
    assert spans[0].start == 0.0 and spans[-1].end == 1.1
    assert [round(s.end - s.start, 3) for s in spans] == [0.11, 0.33, 0.55, 0.11]
    even = spans_from_alignment(["a", "b", "c", "d"], None, 1000, 1000)
    assert [s.end for s in even] == [0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        spans_from_alignment(["a"], [1, 2], 10, 10)


def test_modifiers_fold_into_neighbours() -> None:
    spans = spans_from_alignment(["h", "ˈ", "u", "ː", "$"], [10, 20, 30, 40, 0], 100, 100)
    assert spans == [
        PhonemeSpan("h", 0.0, 0.1),
        PhonemeSpan("u", 0.1, 1.0),  # stress before it, length mark after it
        PhonemeSpan("$", 1.0, 1.0),
    ]


def test_resampling_does_not_clip() -> None:
    n = 22050
    tone = np.sin(2 * np.pi * 3000 * np.arange(n) / 22050).astype(np.float32)
    tone[n // 2 :] = np.sign(tone[n // 2 :])  # square half: rings past full scale
    pcm = to_int16(tone, 22050, 48000)
    assert pcm.dtype == np.int16
    assert len(pcm) == math.ceil(n * 48000 / 22050)
    peak = int(np.max(np.abs(pcm.astype(np.int32))))
    assert 29000 < peak < 32767
    quiet = to_int16(0.1 * tone[: n // 2], 22050, 22050)
    assert abs(int(np.max(quiet)) - 3277) <= 1  # quiet audio is left as it is


def test_split_sentences() -> None:
    assert split_sentences('He said "hi." Then he left!  OK?') == [
        'He said "hi."',
        "Then he left!",
        "OK?",
    ]
    assert split_sentences("Mr. J. Smith met Dr. Lee at 5 p.m. today. Bye.") == [
        "Mr. J. Smith met Dr. Lee at 5 p.m. today.",
        "Bye.",
    ]
    assert split_sentences("So do I. It costs 3.50. Fine") == ["So do I.", "It costs 3.50.", "Fine"]
    assert split_sentences("First line\n\n* second line\n---") == ["First line", "* second line"]
    assert split_sentences("  spaced   out   words ") == ["spaced out words"]
