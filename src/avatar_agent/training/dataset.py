"""Feature rows of labelled clips, for `train` and `evaluate`.

Each clip is read with the same perception cores a call uses (MediaPipe face mesh at
10 fps, pyworld prosody, the log-mel of :mod:`avatar_agent.perception.features`, the speech
embedding of :mod:`avatar_agent.perception.speech_embedding` of every 2 s window
ending on a 0.2 s grid). Rows are cached on disk by file identity, because extracting
a corpus takes minutes and training runs many times; the cache holds derived
features only, never media.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from avatar_agent.affect.call_core import MIN_VOICED_S
from avatar_agent.affect.labels import ClipLabel
from avatar_agent.affect.model import AffectWindow
from avatar_agent.affect.reference import NO_REFERENCE, Reference, build_reference
from avatar_agent.perception.face_expression import FaceExpression
from avatar_agent.perception.features import (
    FACE_DIM,
    FACE_FRAMES,
    FACE_HZ,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICE_HZ,
    VOICED_COL,
    Moments,
    face_moments,
    face_row,
    fit_length,
    log_mel,
    resample_face,
    silence_row,
    voice_moments,
    voice_rows,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM, RATE, SpeechEncoder, fit_samples

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]
FEATURES_VERSION = "3"  # 2: F0 in semitones re 100 Hz; 3: face rows carry the expression
SPEECH_VERSION = "4"  # 2: windows on a 0.5 s grid; 4: int8 encoder (3: a trial, not kept)
SPEECH_GRID_S = 0.5  # crops snap to windows ending on this grid (a call: once a second)
_ENCODER: SpeechEncoder | None = None  # one per worker process, loaded on first use
_EXPRESSION: FaceExpression | None = None


@dataclass
class ClipFeatures:
    path: Path
    label: ClipLabel
    voice: F32 | None  # (T, VOICE_DIM) at 100 Hz
    face: F32 | None  # (T, FACE_DIM) at 10 Hz
    error: str | None = None
    speech: F32 | None = None  # (K, EMBED_DIM): embeddings of the 2 s windows ending at
    speech_ends: F32 | None = None  # (K,) seconds, ascending
    # what a reference gains from this clip (clip_moments); computed once, when first asked
    moments: tuple[Moments, Moments, F32, int] | None = field(default=None, repr=False)

    @property
    def duration(self) -> float:
        v = len(self.voice) / VOICE_HZ if self.voice is not None else 0.0
        f = len(self.face) / FACE_HZ if self.face is not None else 0.0
        return max(v, f)


def extract(path: Path) -> tuple[F32 | None, F32 | None]:
    """Voice rows and 10 Hz face rows of one clip (None for a modality it lacks)."""
    from avatar_agent.perception.audio import load_audio
    from avatar_agent.perception.offline import analyze_file, probe
    from avatar_agent.perception.prosody import analyze_prosody

    has_video, has_audio, _ = probe(path)
    voice = face = None
    if has_audio:
        samples, _dur = load_audio(path)
        if samples.size >= 1600 and float(np.abs(samples).max()) > 1e-4:
            voice = voice_rows(log_mel(samples), analyze_prosody(samples))
    if has_video:
        global _EXPRESSION
        if _EXPRESSION is None:
            _EXPRESSION = FaceExpression.load()
        result = analyze_file(path, max_fps=FACE_HZ, expression=_EXPRESSION)
        if result.face:
            times = np.array([f.t for f in result.face])
            rows = np.stack([face_row(f) for f in result.face])
            n = int(np.floor(times[-1] * FACE_HZ)) + 1
            face = resample_face(times, rows, (n - 1) / FACE_HZ, n=n)
            if not (face[:, -1] > 0.5).any():
                face = None
    return voice, face


def speech_ends(duration: float) -> F32:
    """Ends of the 2 s windows a clip's speech embedding is taken at: every SPEECH_GRID_S from
    2 s, and the clip's end (a clip shorter than 2 s has one, padded with silence)."""
    grid: list[float] = []
    if duration > 2.0:
        grid = np.arange(2.0, duration - 1e-3, SPEECH_GRID_S).tolist()
    return np.asarray([*grid, duration], np.float32)


def extract_speech(samples: F32, encoder: SpeechEncoder) -> tuple[F32, F32]:
    """Speech embeddings of a 16 kHz recording at :func:`speech_ends`."""
    ends = speech_ends(samples.size / RATE)
    wins = np.stack([fit_samples(samples[: round(e * RATE)]) for e in ends])
    return encoder.embed(wins), ends


def _speech_of(path: Path) -> tuple[F32, F32]:
    """Only asked for clips that gave voice rows, so there is audio with sound in it."""
    from avatar_agent.perception.audio import load_audio

    global _ENCODER
    if _ENCODER is None:
        _ENCODER = SpeechEncoder.load()
    samples, _dur = load_audio(path)
    return extract_speech(np.asarray(samples, np.float32), _ENCODER)


def _save_npz(file: Path, arrays: dict[str, F32]) -> None:
    """Write a cache file whole or not at all, so a crash never leaves half a file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    # named for this process: two runs sharing a cache may write the same clip at once
    tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")
    try:
        np.savez_compressed(tmp, **arrays)
        tmp.replace(file)
    finally:
        tmp.unlink(missing_ok=True)


@functools.lru_cache(maxsize=8192)
def _content_digest(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_key(path: Path, version: str = FEATURES_VERSION) -> str:
    """By the file's content, not its name or time: a copied or re-synced corpus
    (new times, same bytes) keeps its cache."""
    st = path.stat()
    digest = _content_digest(path.resolve(), st.st_size, st.st_mtime_ns)
    return hashlib.sha1(f"{version}|{digest}".encode()).hexdigest()


def _speech_cached(path: Path, cache: Path | None) -> tuple[F32, F32]:
    """Speech embeddings, cached apart from the rows so either can change alone."""
    file = cache / f"speech-{_cache_key(path, SPEECH_VERSION)}.npz" if cache else None
    if file is not None and file.is_file():
        with np.load(file) as z:
            return np.asarray(z["speech"], np.float32), np.asarray(z["ends"], np.float32)
    speech, ends = _speech_of(path)
    if file is not None:
        _save_npz(file, {"speech": speech, "ends": ends})
    return speech, ends


Extracted = tuple[F32 | None, F32 | None, str | None, F32 | None, F32 | None]


def _extract_all(path: Path, cache: Path | None) -> Extracted:
    voice, face, error = _extract_cached(path, cache)
    if error is not None or voice is None:
        return voice, face, error, None, None
    try:
        speech, ends = _speech_cached(path, cache)
    except Exception as exc:
        return voice, face, " ".join(str(exc).split()) or type(exc).__name__, None, None
    return voice, face, None, speech, ends


def _extract_cached(path: Path, cache: Path | None) -> tuple[F32 | None, F32 | None, str | None]:
    file = cache / f"{_cache_key(path)}.npz" if cache is not None else None
    if file is not None and file.is_file():
        with np.load(file) as z:
            voice = np.asarray(z["voice"], np.float32) if "voice" in z.files else None
            face = np.asarray(z["face"], np.float32) if "face" in z.files else None
            return voice, face, None
    try:
        voice, face = extract(path)
    except Exception as exc:  # reported per clip, never silently dropped
        return None, None, " ".join(str(exc).split()) or type(exc).__name__
    if file is not None:
        _save_npz(file, {k: v for k, v in (("voice", voice), ("face", face)) if v is not None})
    return voice, face, None


def _init_worker() -> None:
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)


def load_clips(
    clips: Sequence[tuple[Path, ClipLabel]],
    cache: Path | None,
    workers: int = 2,
    progress: Callable[[int], object] | None = None,
) -> list[ClipFeatures]:
    """Features of every clip, in order; a clip that cannot be read carries `error`."""
    out: list[ClipFeatures] = []
    paths = [p for p, _ in clips]
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        results = pool.map(_extract_all, paths, [cache] * len(paths), chunksize=4)
        for (path, label), (voice, face, error, speech, ends) in zip(
            clips, results, strict=True
        ):
            if error is None and voice is None and face is None:
                error = "no speech and no face found"
            out.append(ClipFeatures(path, label, voice, face, error, speech, ends))
            if progress is not None:
                progress(1)
    return out


CALM_LABELS = frozenset({"neutral", "calm"})
CALM_REFERENCE_CLIPS = 3
AROUSAL_TARGET = {"high": 1.0, "low": 0.0}


def clip_moments(clip: ClipFeatures) -> tuple[Moments, Moments, F32, int]:
    """A clip's contribution to a reference: voice and face moments, the sum and count
    of its speech embeddings (kept on the clip: references are drawn very often)."""
    if clip.moments is not None:
        return clip.moments
    vm = voice_moments(clip.voice) if clip.voice is not None else Moments(VOICE_DIM, VOICED_COL)
    fm = face_moments(clip.face) if clip.face is not None else Moments(FACE_DIM, PRESENT_COL)
    if clip.speech is not None and len(clip.speech):
        ssum, count = clip.speech.sum(axis=0).astype(np.float32), len(clip.speech)
    else:
        ssum, count = np.zeros(EMBED_DIM, np.float32), 0
    clip.moments = (vm, fm, ssum, count)
    return clip.moments


def reference_of(clips: Sequence[ClipFeatures], speech_per_s: float = 1.0) -> Reference:
    """The reference a call would hold after hearing ``clips`` and reading them calm.

    A live call adds one speech embedding a second; clips carry one per
    ``SPEECH_GRID_S``, so the embedding's evidence is counted in seconds of speech.
    """
    if not clips:
        return NO_REFERENCE
    vm, fm = Moments(VOICE_DIM, VOICED_COL), Moments(FACE_DIM, PRESENT_COL)
    ssum = np.zeros(EMBED_DIM, np.float64)
    count = 0
    for c in clips:
        cv, cf, cs, cn = clip_moments(c)
        vm, fm = vm + cv, fm + cf
        ssum += cs
        count += cn
    return build_reference(vm, fm, ssum, count, count * SPEECH_GRID_S * speech_per_s)


def windows_of(
    clip: ClipFeatures, ref: Reference = NO_REFERENCE, hop_s: float = 1.0
) -> list[AffectWindow]:
    """2 s windows over a clip, every `hop_s`, the last one ending at the clip's end."""
    dur = clip.duration
    ends = sorted({*np.arange(min(2.0, dur), dur + 1e-6, hop_s).tolist(), dur})
    return [w for w in (window_at(clip, end, ref) for end in ends) if w.has_voice or w.has_face]


def window_at(clip: ClipFeatures, end_s: float, ref: Reference = NO_REFERENCE) -> AffectWindow:
    """The 2 s of a clip ending at ``end_s`` (padded with silence before its start)."""
    voice = face = None
    if clip.voice is not None:
        stop = min(len(clip.voice), round(end_s * VOICE_HZ))
        voice = fit_length(clip.voice[:stop], VOICE_FRAMES, silence_row())
        if (voice[:, VOICED_COL] > 0.5).sum() < MIN_VOICED_S * VOICE_HZ:
            voice = None  # as in a call: too little speech is no voice reading
    if clip.face is not None:
        stop = min(len(clip.face), round(end_s * FACE_HZ))
        face = fit_length(clip.face[:stop], FACE_FRAMES, np.zeros(FACE_DIM, np.float32))
        if face[:, PRESENT_COL].sum() < FACE_FRAMES // 2:
            face = None
    speech = None
    if voice is not None and clip.speech is not None and clip.speech_ends is not None:
        # the newest embedding of a window that ended by then; none before the first
        # (a call has none in its first 2 s either)
        k = int(np.searchsorted(clip.speech_ends, end_s + 1e-3, side="right")) - 1
        speech = clip.speech[k] if k >= 0 else None
    return AffectWindow(voice, face, speech, ref)


def calm_references(clips: Sequence[ClipFeatures], rng: random.Random,
                    k: int = CALM_REFERENCE_CLIPS) -> list[Reference]:
    """Per clip, the reference a call would hold after `k` other calm (neutral or calm)
    clips of the same speaker, never the clip itself; no reference where there are none."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(clips):
        if c.label.emotion in CALM_LABELS:
            by[c.label.speaker].append(i)
    out = []
    for i, c in enumerate(clips):
        others = [j for j in by[c.label.speaker] if j != i]
        pick = rng.sample(others, min(k, len(others)))
        out.append(reference_of([clips[j] for j in pick]))
    return out
