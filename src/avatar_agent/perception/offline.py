"""Analyse a recorded clip (video and/or audio) with the same cores a live call uses.

Face and voice run side by side (the voice in a worker thread), so a clip is
analysed several times faster than real time on two cores.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from avatar_agent.perception.audio import AudioFileError, load_audio
from avatar_agent.perception.baseline import Baseline, VoiceBaseline
from avatar_agent.perception.face import FACE_FEATURE_NAMES, FaceAnalyzer, FaceFeatures
from avatar_agent.perception.microexpr import MicroExpression, MicroExpressionDetector
from avatar_agent.perception.prosody import ProsodyFrame, analyze_prosody
from avatar_agent.perception.vad import detect_speech

FACE_BASELINE_S = 5.0
# Face analysis rate for files: the rate a live call analyses at (perception.face_fps).
DEFAULT_FACE_FPS = 15.0
VOICE_BASELINE_S = 3.0


class AnalyzeError(Exception):
    """A clip that cannot be analysed; the message is one line for the user."""


@dataclass
class VoiceTrack:
    frames: list[ProsodyFrame]
    speech: list[tuple[float, float]]
    # per frame, offsets from the speaker's own baseline: semitones and dB
    f0_rel_st: npt.NDArray[np.float32]
    energy_rel_db: npt.NDArray[np.float32]


@dataclass
class FileAnalysis:
    path: Path
    duration: float
    face: list[FaceFeatures] = field(default_factory=list)
    face_rel: list[npt.NDArray[np.float32]] = field(default_factory=list)
    micro: list[MicroExpression] = field(default_factory=list)
    voice: VoiceTrack | None = None
    has_video: bool = False
    elapsed_s: float = 0.0

    @property
    def speed(self) -> float:
        """How many times faster than real time the analysis ran."""
        return self.duration / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def voice_relative(frames: list[ProsodyFrame], warmup_s: float = VOICE_BASELINE_S) -> VoiceTrack:
    """Pitch and loudness against the speaker's own voiced-speech baseline."""
    base = VoiceBaseline(warmup_s)
    rel = np.array([base.update(fr.t, fr) for fr in frames], np.float32).reshape(-1, 2)
    return VoiceTrack(frames, [], rel[:, 0], rel[:, 1])


def _analyze_voice(samples: npt.NDArray[np.float32]) -> VoiceTrack:
    track = voice_relative(analyze_prosody(samples))
    track.speech = detect_speech(samples)
    return track


def probe(path: Path) -> tuple[bool, bool, float]:
    if not path.exists():
        raise AnalyzeError(f"{path}: no such file")
    if path.is_dir():
        raise AnalyzeError(f"{path}: is a folder, not a media file")
    if path.stat().st_size == 0:
        raise AnalyzeError(f"{path}: the file is empty")
    try:
        with av.open(str(path)) as c:
            has_video = bool(c.streams.video)
            has_audio = bool(c.streams.audio)
            duration = float(c.duration / av.time_base) if c.duration else 0.0
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AnalyzeError(f"{path}: not a readable audio or video file ({exc})") from None
    if not (has_video or has_audio):
        raise AnalyzeError(f"{path}: contains neither audio nor video")
    return has_video, has_audio, duration


def analyze_file(
    path: Path,
    progress: Callable[[float], None] | None = None,
    max_fps: float | None = DEFAULT_FACE_FPS,
) -> FileAnalysis:
    """Analyse a clip; `progress` is called with media seconds done (video, else audio)."""
    t0 = time.perf_counter()
    has_video, has_audio, duration = probe(path)
    result = FileAnalysis(path, duration, has_video=has_video)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice") as pool:
        voice_job = None
        if has_audio:
            try:
                samples, audio_duration = load_audio(path)
            except AudioFileError as exc:
                raise AnalyzeError(str(exc)) from None
            result.duration = max(result.duration, audio_duration)
            if samples.size >= 1600:  # at least 0.1 s, else there is nothing to measure
                voice_job = pool.submit(_analyze_voice, samples)
        if has_video:
            _analyze_video(path, result, progress, max_fps)
        if voice_job is not None:
            result.voice = voice_job.result()
            if not has_video and progress is not None:
                progress(result.duration)
    if len(result.face) < 3 and result.voice is None:
        raise AnalyzeError(
            f"{path}: less than 0.1 s of audio or video could be decoded (truncated or corrupt?)"
        )
    result.elapsed_s = time.perf_counter() - t0
    return result


def _decode_frames(
    path: Path, max_fps: float | None, out: queue.Queue[tuple[float, Any] | BaseException | None]
) -> None:
    """Decode (and convert to RGB) in its own thread, so it overlaps the face mesh."""
    next_t = 0.0
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in c.decode(stream):
                t = float(frame.time) if frame.time is not None else next_t
                if max_fps and t + 1e-6 < next_t:
                    continue  # skipped frames are never converted: that is most of the cost
                # on a fixed grid, so 25 fps analysed at 15 fps gives 15 frames a second
                next_t = max(next_t + 1.0 / max_fps, t) if max_fps else t
                out.put((t, frame.to_ndarray(format="rgb24")))
    except BaseException as exc:  # handed to the consumer, which decides what it means
        out.put(exc)
    finally:
        out.put(None)


def _analyze_video(
    path: Path,
    result: FileAnalysis,
    progress: Callable[[float], None] | None,
    max_fps: float | None,
) -> None:
    # Up to ~1 s of frames in memory: decoding starts while the face mesh is loading.
    frames: queue.Queue[tuple[float, Any] | BaseException | None] = queue.Queue(maxsize=32)
    decoder = threading.Thread(
        target=_decode_frames, args=(path, max_fps, frames), name="decode", daemon=True
    )
    decoder.start()
    detector = MicroExpressionDetector()
    base = Baseline(len(FACE_FEATURE_NAMES), warmup_s=FACE_BASELINE_S)
    analyzer: FaceAnalyzer | None = None
    try:
        analyzer = FaceAnalyzer()  # inside try: if it fails, the decoder is still drained
        while (item := frames.get()) is not None:
            if isinstance(item, BaseException):
                if isinstance(item, av.FFmpegError) and not result.face:
                    raise AnalyzeError(f"{path}: the video cannot be decoded ({item})")
                if not isinstance(item, av.FFmpegError):
                    raise item
                continue  # a clip truncated mid-stream: keep what was decoded
            t, rgb = item
            feats = analyzer.analyze(rgb, t)
            vec = feats.vector()
            if feats.present:
                base.update(t, vec)
            result.face.append(feats)
            result.face_rel.append(base.relative(vec) if feats.present else np.zeros_like(vec))
            result.micro.extend(detector.update(feats))
            if progress is not None:
                progress(t)
    finally:
        while decoder.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.1)
        if analyzer is not None:
            analyzer.close()
