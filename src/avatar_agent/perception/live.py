"""Perception during a call: face and voice features of the customer, as they happen.

`CallPerception` runs only for customers who consented. `run_voice_activity` is
the exception: speech start/end from voice activity detection, and nothing else,
runs for every call, because turn-taking and barge-in need it; it keeps no
features and stores nothing. Face analysis takes the newest video frame
at most `face_fps` times a second (frames in between are dropped and counted); the
voice is analysed continuously from a bounded queue. Heavy work (MediaPipe, pitch,
VAD) runs in the analysis pool, never on the event loop. Results go into bounded
per-call rings that the affect stage reads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

import av
import numpy as np
import numpy.typing as npt

from avatar_agent.core.aio import build_in_executor
from avatar_agent.core.clock import Clock, LoopClock, Ticker
from avatar_agent.core.config import PerceptionConfig
from avatar_agent.core.faults import StageFaults
from avatar_agent.core.metrics import Metrics
from avatar_agent.perception.audio import Downsampler, to_mono
from avatar_agent.perception.face import FaceAnalyzer, FaceFeatures
from avatar_agent.perception.face_expression import FaceExpression
from avatar_agent.perception.face_pool import FaceAnalyzers
from avatar_agent.perception.features import (
    FACE_DIM,
    VOICE_DIM,
    VOICE_HZ,
    VOICED_COL,
    LogMelStream,
    face_row,
    voice_rows,
)
from avatar_agent.perception.microexpr import MicroExpression, MicroExpressionDetector
from avatar_agent.perception.onset import OnsetDetector
from avatar_agent.perception.prosody import ProsodyFrame, ProsodyTracker
from avatar_agent.perception.ring import FeatureRing
from avatar_agent.perception.shedding import LoadShedder
from avatar_agent.perception.speech_embedding import (
    HOP_S,
    RATE,
    SampleRing,
    SpeechEncoder,
)
from avatar_agent.perception.turn_audio import TurnAudio
from avatar_agent.perception.vad import VadEvent, VoiceActivity
from avatar_agent.transport.receiver import Receiver

log = logging.getLogger(__name__)

VOICE_STEP_S = 0.1  # how often queued audio is analysed
AUDIO_QUEUE = 100  # 2 s of 20 ms frames: beyond that the analysis is too far behind
MIN_EMBED_VOICED_S = 0.3  # a 2 s window with less voiced speech gets no speech embedding
# Frames scored together by the VAD: Silero reads 32 ms chunks, so a lone 20 ms frame
# mostly waits in its buffer anyway; two at a time halve the trips to the analysis pool
# (each wakes the event loop) for at most 20 ms more before a speech start or end.
VAD_BATCH_FRAMES = 2


class CallPerception:
    def __init__(
        self,
        cfg: PerceptionConfig,
        pool: Executor,
        metrics: Metrics,
        media_time: Callable[[], float],
        speech_encoder: SpeechEncoder | None = None,
        expression: FaceExpression | None = None,
        clock: Clock | None = None,
        media_behind: Callable[[], int] = lambda: 0,
        faults: StageFaults | None = None,
        analyzers: FaceAnalyzers | None = None,
    ) -> None:
        self.cfg = cfg
        # Face analysers shared by the server's calls (kept between calls); without
        # them this call builds its own and closes it at its end.
        self._analyzers = analyzers
        self._faults = faults or StageFaults("?", metrics)
        self._clock: Clock = clock or LoopClock()
        # How many avatar frames the server has had to skip so far: when it grows, the
        # machine is behind and face analysis gives way (the avatar must not stall).
        self._media_behind = media_behind
        self._pool = pool
        self._encoder = speech_encoder
        self._expression = expression
        self._metrics = metrics
        self._media_time = media_time
        self.micro: deque[MicroExpression] = deque(maxlen=64)
        self.micro_total = 0  # ever found, so a reader of `micro` can tell what is new
        # What the affect stage reads: rows as measured. The caller's reference is the
        # affect stage's (affect/reference.py): only it knows which windows read calm.
        self.model_voice = FeatureRing(VOICE_DIM, round(cfg.ring_seconds * VOICE_HZ) + 1)
        self.model_face = FeatureRing(FACE_DIM, round(cfg.ring_seconds * cfg.face_fps) + 1)
        # The speech embedding of the last 2 s, refreshed every second while the
        # customer speaks: (media time of the window's end, embedding).
        self.speech: tuple[float, npt.NDArray[np.float32]] | None = None

    # --- face -----------------------------------------------------------------

    async def run_face(self, receiver: Receiver[av.VideoFrame]) -> None:
        loop = asyncio.get_running_loop()
        slot = receiver.subscribe()
        # Cancelled during the build (the call ended at once), the graph is still
        # closed or given back.
        take: Callable[[], FaceAnalyzer]
        give_back: Callable[[FaceAnalyzer], None]
        if self._analyzers is not None:
            take, give_back = self._analyzers.take, self._analyzers.give_back
        else:
            take = functools.partial(FaceAnalyzer, expression=self._expression)
            give_back = FaceAnalyzer.close
        analyzer = await build_in_executor(self._pool, take, give_back)
        micro = MicroExpressionDetector()
        period = 1.0 / self.cfg.face_fps
        latency = self._metrics.stage_seconds.labels("face")
        shedder = LoadShedder()
        shed = self._metrics.frames_dropped.labels("video", "shed")
        ticker = Ticker(self._clock, period)
        try:
            while True:
                now = await ticker.tick()
                frame = slot.take()
                if frame is None:
                    continue
                if not shedder.allow(now, self._media_behind()):
                    shed.inc()  # the avatar's media is behind: this frame goes unanalysed
                    continue
                t = self._media_time()
                t0 = time.perf_counter()
                try:
                    feats = await loop.run_in_executor(self._pool, _analyze, analyzer, frame, t)
                except Exception as exc:  # one bad frame must not end analysis, or the call
                    self._faults.failed("face", exc)
                    continue
                latency.observe(time.perf_counter() - t0)
                self._face_result(feats, micro)
        finally:
            await loop.run_in_executor(self._pool, give_back, analyzer)

    def _face_result(self, feats: FaceFeatures, micro: MicroExpressionDetector) -> None:
        self._metrics.frames_analysed.labels("face").inc()
        self.model_face.append(feats.t, face_row(feats))
        found = micro.update(feats)
        self.micro.extend(found)
        self.micro_total += len(found)

    # --- voice ----------------------------------------------------------------

    async def run_voice(self, receiver: Receiver[av.AudioFrame]) -> None:
        loop = asyncio.get_running_loop()
        queue = receiver.subscribe_queue(AUDIO_QUEUE)
        tracker = ProsodyTracker()
        down = Downsampler()
        mel = LogMelStream()
        ring = SampleRing()
        latency = self._metrics.stage_seconds.labels("voice")
        t_start: float | None = None
        next_embed = 0.0
        ticker = Ticker(self._clock, VOICE_STEP_S)
        while True:
            await ticker.tick()
            frames = queue.drain()
            if not frames:
                continue
            if t_start is None:
                # place the audio on the call's media clock where it started arriving
                t_start = max(0.0, self._media_time() - len(frames) * 0.02)
            t0 = time.perf_counter()
            try:
                hops, rows = await loop.run_in_executor(
                    self._pool, _voice_step, down, tracker, mel, ring, frames
                )
            except Exception as exc:  # these frames go unanalysed; the next ones are read
                self._faults.failed("voice", exc)
                continue
            latency.observe(time.perf_counter() - t0)
            self._metrics.frames_analysed.labels("voice").inc(len(hops))
            for fr, row in zip(hops, rows, strict=True):
                self.model_voice.append(t_start + fr.t, row)
            t_end = t_start + ring.total / RATE
            if self._encoder is not None and ring.full and t_end >= next_embed:
                next_embed = t_end + HOP_S
                await self._embed(ring, t_end)

    async def _embed(self, ring: SampleRing, t_end: float) -> None:
        """Speech embedding of the last 2 s, if the customer spoke in them."""
        assert self._encoder is not None
        times, rows = self.model_voice.window(t_end - 2.0)
        if (rows[:, VOICED_COL] > 0.5).sum() < MIN_EMBED_VOICED_S * VOICE_HZ:
            return
        t0 = time.perf_counter()
        try:
            emb = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._encoder.embed, ring.samples()
            )
        except Exception as exc:  # this second goes without an embedding, the call goes on
            self._faults.failed("speech_embedding", exc)
            return
        self._metrics.stage_seconds.labels("speech_embedding").observe(time.perf_counter() - t0)
        self.speech = (t_end, emb[0])


def _analyze(analyzer: FaceAnalyzer, frame: av.VideoFrame, t: float) -> FaceFeatures:
    return analyzer.analyze(frame.to_ndarray(format="rgb24"), t)


def _voice_step(
    down: Downsampler,
    tracker: ProsodyTracker,
    mel: LogMelStream,
    ring: SampleRing,
    frames: list[av.AudioFrame],
) -> tuple[list[ProsodyFrame], npt.NDArray[np.float32]]:
    pcm = np.concatenate([down.push_frame(f) for f in frames])
    mel.push(pcm)
    ring.push(pcm)
    hops = tracker.push(pcm)
    first = round(hops[0].t * VOICE_HZ) if hops else 0
    return hops, voice_rows(mel.rows(first, len(hops)), hops)


async def run_voice_activity(
    receiver: Receiver[av.AudioFrame],
    pool: Executor,
    media_time: Callable[[], float],
    on_event: Callable[[VadEvent], None],
    min_speech_s: float = 0.25,
    min_silence_s: float = 0.3,
    keep: TurnAudio | None = None,
    faults: StageFaults | None = None,
) -> None:
    """Speech start/end of the customer, for every call (consent or not).

    Frames are scored two at a time as they arrive (:data:`VAD_BATCH_FRAMES`; Silero
    in the pool, one step at a time, so a slow pool only makes the bounded queue
    longer). Only the events leave this function: no audio or probability is kept
    beyond the VAD's few-chunk state, and the last seconds of 16 kHz audio in `keep`
    (memory only) so that a finished turn can be transcribed. Times are on the call's
    media clock. A batch that cannot be read (a frame at another rate) is skipped and
    counted in `faults`: turn-taking must outlive one bad frame.
    """
    faults = faults or StageFaults("?")
    loop = asyncio.get_running_loop()
    queue = receiver.subscribe_queue(AUDIO_QUEUE)
    vad = await loop.run_in_executor(pool, lambda: VoiceActivity(
        min_speech_s=min_speech_s, min_silence_s=min_silence_s, history_s=1.0))
    down = Downsampler()
    t_start: float | None = None
    pending: list[av.AudioFrame] = []
    while True:
        pending.extend(queue.drain())
        if len(pending) < VAD_BATCH_FRAMES and not receiver.ended:
            await receiver.arrival()  # woken by each frame
            continue
        if not pending:
            return  # ended: arrival() no longer waits, so looping on would spin the loop
        frames, pending = pending, []
        if t_start is None:
            t_start = max(0.0, media_time() - len(frames) * 0.02)
        try:
            events = await loop.run_in_executor(
                pool, _vad_step, down, vad, frames, keep, t_start)
        except Exception as exc:
            faults.failed("voice_activity", exc)
            continue
        for ev in events:
            on_event(VadEvent(ev.kind, t_start + ev.t))


async def run_onset(
    receiver: Receiver[av.AudioFrame], onset: OnsetDetector, on_onset: Callable[[], None]
) -> None:
    """A sudden sound from the customer (`on_onset`), long before the VAD can call it
    speech, so the avatar can hold its speech at once.

    Its own task and queue, on the loop: one RMS per 20 ms frame costs microseconds,
    and waiting behind a VAD step in a busy analysis pool would delay the hold by
    whole frames. Nothing but the detector's noise floor is kept.
    """
    queue = receiver.subscribe_queue(AUDIO_QUEUE)
    while True:
        frames = queue.drain()
        if not frames:
            if receiver.ended:
                return
            await receiver.arrival()
            continue
        # every frame goes through the detector (a list, not a short-circuiting any())
        if any([onset.push(_mono(f)) for f in frames]):
            on_onset()


def _mono(frame: av.AudioFrame) -> npt.NDArray[np.float64]:
    return to_mono(frame.to_ndarray(), len(frame.layout.channels))


def _vad_step(
    down: Downsampler, vad: VoiceActivity, frames: list[av.AudioFrame],
    keep: TurnAudio | None = None, t_start: float = 0.0,
) -> list[VadEvent]:
    pcm = np.concatenate([down.push_frame(f) for f in frames])
    if keep is not None:
        keep.push(pcm, t_start)
    return vad.push(pcm)
