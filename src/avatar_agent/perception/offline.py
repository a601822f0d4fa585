"""Analyse a recorded clip (video and/or audio) with the same cores a live call uses.

Face and voice run side by side (the voice in a worker thread), so a clip is
analysed several times faster than real time on two cores.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from avatar_agent.perception.audio import AudioFileError, load_audio
from avatar_agent.perception.baseline import Baseline, VoiceBaseline
from avatar_agent.perception.face import FACE_FEATURE_NAMES, FaceAnalyzer, FaceFeatures
from avatar_agent.perception.face_expression import FaceExpression
from avatar_agent.perception.microexpr import MicroExpression, MicroExpressionDetector
from avatar_agent.perception.prosody import ProsodyFrame, analyze_prosody
from avatar_agent.perception.vad import detect_speech

FACE_BASELINE_S = 5.0
# Face analysis rate for files. Lower than a live call's 15 fps so that a clip is
# analysed several times faster than real time on two cores; face geometry changes
# little within 100 ms. `analyze --max-fps 15` matches a live call exactly.
DEFAULT_FACE_FPS = 10.0
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
    # part of elapsed_s spent before the first frame could be analysed (imports, models)
    startup_s: float = 0.0
    fps: float | None = None

    @property
    def speed(self) -> float:
        """How many times faster than real time the analysis ran."""
        return self.duration / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    @property
    def speed_after_startup(self) -> float:
        """Throughput once the models are loaded: what a long clip converges to."""
        busy = self.elapsed_s - self.startup_s
        return self.duration / busy if busy > 0 else float("inf")


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
    expression: FaceExpression | None = None,
) -> FileAnalysis:
    """Analyse a clip; `progress` is called with media seconds done (video, else audio)."""
    t0 = time.perf_counter()
    has_video, has_audio, duration = probe(path)
    result = FileAnalysis(path, duration, has_video=has_video, fps=max_fps if has_video else None)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="analyze") as pool:
        # Loading the mesh (a second or so of imports) overlaps reading the audio.
        mesh_job = pool.submit(FaceAnalyzer, expression=expression) if has_video else None
        voice_job = None
        if has_audio:
            try:
                samples, audio_duration = load_audio(path)
            except AudioFileError as exc:
                raise AnalyzeError(str(exc)) from None
            result.duration = max(result.duration, audio_duration)
            if samples.size >= 1600:  # at least 0.1 s, else there is nothing to measure
                voice_job = pool.submit(_analyze_voice, samples)
        if mesh_job is not None:
            _analyze_video(path, result, progress, max_fps, mesh_job, t0)
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


def _queue_frames(path: Path, budget_bytes: int = 96 << 20) -> int:
    """How many decoded RGB frames may wait: decoding runs ahead while the mesh loads."""
    try:
        with av.open(str(path)) as c:
            ctx = c.streams.video[0].codec_context
            frame_bytes = max(1, int(ctx.width) * int(ctx.height) * 3)
    except (av.FFmpegError, IndexError, ValueError):
        return 8
    return int(min(512, max(8, budget_bytes // frame_bytes)))


def _analyze_video(
    path: Path,
    result: FileAnalysis,
    progress: Callable[[float], None] | None,
    max_fps: float | None,
    mesh_job: Future[FaceAnalyzer],
    t0: float,
) -> None:
    # Decoding starts while the face mesh is loading, with a bounded lead.
    frames: queue.Queue[tuple[float, Any] | BaseException | None]
    frames = queue.Queue(maxsize=_queue_frames(path))
    decoder = threading.Thread(
        target=_decode_frames, args=(path, max_fps, frames), name="decode", daemon=True
    )
    decoder.start()
    detector = MicroExpressionDetector()
    base = Baseline(len(FACE_FEATURE_NAMES), warmup_s=FACE_BASELINE_S)
    analyzer: FaceAnalyzer | None = None

    def measure(points: Any, width: int, height: int, t: float, rgb: Any) -> None:
        # One worker thread, so features, baseline and events stay in time order.
        assert analyzer is not None
        feats = analyzer.measure(points, width, height, t, rgb)
        vec = feats.vector()
        if feats.present:
            base.update(t, vec)
        result.face.append(feats)
        result.face_rel.append(base.relative(vec) if feats.present else np.zeros_like(vec))
        result.micro.extend(detector.update(feats))
        if progress is not None:
            progress(t)

    # The mesh (native code, GIL released) of frame N+1 runs while Python measures frame N.
    pending: deque[Future[None]] = deque()
    measurer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="measure")
    try:
        analyzer = mesh_job.result()  # inside try: if it failed, the decoder is still drained
        result.startup_s = time.perf_counter() - t0
        while (item := frames.get()) is not None:
            if isinstance(item, BaseException):
                if isinstance(item, av.FFmpegError) and not result.face and not pending:
                    raise AnalyzeError(f"{path}: the video cannot be decoded ({item})")
                if not isinstance(item, av.FFmpegError):
                    raise item
                continue  # a clip truncated mid-stream: keep what was decoded
            t, rgb = item
            points = analyzer.detect(rgb, t)
            pending.append(measurer.submit(measure, points, rgb.shape[1], rgb.shape[0], t, rgb))
            while len(pending) > 8 or (pending and pending[0].done()):
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    finally:
        while decoder.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.1)
        measurer.shutdown(wait=True, cancel_futures=True)
        if analyzer is not None:
            analyzer.close()
