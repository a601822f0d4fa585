"""What all calls of one server process share: config, store, voice, worker pools."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from avatar_agent.affect.engine import AffectEngine
from avatar_agent.affect.model import AffectOutput, AffectWindow, validate_window
from avatar_agent.affect.predictor import AffectPredictor
from avatar_agent.affect.script import AffectScript, load_script
from avatar_agent.avatar.render import default_avatar_dir
from avatar_agent.core.aio import TaskSet
from avatar_agent.core.bus import EventBus
from avatar_agent.core.config import Config, project_path
from avatar_agent.core.metrics import Metrics
from avatar_agent.core.redisbus import make_bus, register_bus_metrics
from avatar_agent.core.store import AsyncStore, Store
from avatar_agent.core.threadcpu import claim_new_threads
from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.perception.face_expression import FaceExpression
from avatar_agent.perception.face_pool import FaceAnalyzers
from avatar_agent.perception.speech_embedding import SpeechEncoder, read_weights
from avatar_agent.perception.turn_audio import RATE
from avatar_agent.speech.answers import Answerer, KnowledgeAnswerer, OpenAIAnswerer
from avatar_agent.speech.asr import Transcriber
from avatar_agent.speech.knowledge import Entry, load_knowledge
from avatar_agent.speech.tts import PiperTTS, TTSEngine
from avatar_agent.speech.types import Utterance

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        config: Config,
        store: AsyncStore,
        tts: TTSEngine,
        avatar_dir: Path,
        metrics: Metrics | None = None,
        predictor: AffectPredictor | None = None,
        affect_script: AffectScript | None = None,
        speech_encoder: SpeechEncoder | None = None,
        face_expression: FaceExpression | None = None,
        pool: Executor | None = None,
        transcriber: Transcriber | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.tts = tts
        self.avatar_dir = avatar_dir
        self.metrics = metrics or Metrics()
        self.tasks = TaskSet("server")
        # Rendering is short and frequent, synthesis is long: separate pools so a
        # sentence being synthesized never delays a video frame. Customer analysis (face
        # mesh, pitch, VAD) has its own, so a backlog of analysis can never hold up the
        # avatar's frames. `pool` replaces all three (core.aio.InlineExecutor for a
        # call run in virtual time).
        self.render_pool: Executor = pool or ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="render"
        )
        self.tts_pool: Executor = pool or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tts")
        self.analysis_pool: Executor = pool or ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="analysis")
        # Speech recognition: one worker (a recognition uses a core for a few hundred
        # ms), apart from analysis so that turns ending together never hold up any
        # call's voice activity or face analysis.
        self.asr_pool: Executor = pool or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="asr")
        self._speech_cache: dict[str, list[Utterance]] = {}
        self.events: EventBus = make_bus(config.bus)  # Redis between workers, or in-process
        register_bus_metrics(self.events, self.metrics.registry)
        self.predictor = predictor
        self.speech_encoder = speech_encoder  # perception feeds the model its embeddings
        self.face_expression = face_expression  # ... and the face's expression
        # Face meshes are kept between calls, as many as calls may run at once.
        self.face_analyzers = FaceAnalyzers(
            functools.partial(FaceAnalyzer, expression=face_expression),
            keep=config.server.max_calls)
        self.affect_script = affect_script
        # Speech recognition and answers for every call (None: replies follow the level).
        self.transcriber = transcriber
        self.answerer = answerer
        self.affect: AffectEngine[AffectWindow, AffectOutput] | None = None
        if predictor is not None:
            self.affect = AffectEngine(
                self._predict,
                validate_window,
                max_batch=config.affect.max_batch,
                max_wait_s=config.affect.max_wait_ms / 1000.0,
                executor=pool,
            )

    def _predict(self, windows: list[AffectWindow]) -> list[AffectOutput]:
        assert self.predictor is not None
        self.metrics.affect_batch_size.observe(len(windows))
        return self.predictor.predict(windows)

    @classmethod
    async def start(cls, config: Config) -> Runtime:
        """Load everything heavy once, off the event loop, before the first call."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        # Calls already run in parallel on the render pool; OpenCV's own worker threads
        # on top of that only fight over the same cores and stretch the slowest frames.
        cv2.setNumThreads(1)
        store = await loop.run_in_executor(None, Store, config.storage.url)
        # a worker of a cluster ends only its own calls left open: the others' still run
        closed = await loop.run_in_executor(None, functools.partial(
            store.end_orphans, worker=config.cluster.worker_id))
        if closed:
            log.warning("marked %d calls left open by an earlier run as ended", closed)
        avatar_dir = default_avatar_dir().parent / config.avatar.name
        if not avatar_dir.is_dir():
            raise FileNotFoundError(f"avatar {config.avatar.name!r} not found at {avatar_dir}")
        tts = await loop.run_in_executor(None, lambda: PiperTTS(speed=config.tts.speed))
        await loop.run_in_executor(None, _warm_perception)
        # Whisper's weights are read and checked once, for the speech embedding and
        # for speech recognition both.
        blob = await loop.run_in_executor(None, _whisper_weights)
        script = None
        if config.affect.script is not None:
            # A bad script stops start-up with its error rather than running calls without it.
            script = load_script(Path(config.affect.script))
            log.warning("affect comes from the script %s, not the model", config.affect.script)
            predictor, encoder, expression = None, None, None
        else:
            predictor, encoder, expression = await loop.run_in_executor(
                None, load_predictor, config, blob)
        transcriber, answerer = await loop.run_in_executor(
            None, load_understanding, config, blob)
        del blob
        astore = AsyncStore(store)
        astore.worker = config.cluster.worker_id
        rt = cls(config, astore, tts, avatar_dir, predictor=predictor,
                 affect_script=script, speech_encoder=encoder, face_expression=expression,
                 transcriber=transcriber, answerer=answerer)
        # Loading MediaPipe takes most of a second; done lazily it would cost the first
        # consenting customer that second of analysis. The mesh built here is kept for
        # that first call.
        await loop.run_in_executor(rt.analysis_pool, rt.face_analyzers.warm)
        await rt.ready()
        # In the background: the server takes calls meanwhile, and the voice's single
        # worker runs these one sentence at a time, so a call's own speech waits behind
        # at most one of them.
        rt.tasks.spawn(rt.preload_answers(), "preload-answers")
        log.info("runtime ready in %.1f s", time.perf_counter() - t0)
        return rt

    async def ready(self) -> None:
        """Start what runs as long as the server, before the first call."""
        await self.events.start()
        if self.affect is not None:
            await self.affect.start()  # the shared batcher lives as long as the server
        # The greeting is the same for every call: synthesize it once so a call
        # hears it as soon as media flows.
        greeting = self.config.tts.greeting
        self._speech_cache[greeting] = await asyncio.get_running_loop().run_in_executor(
            self.tts_pool, lambda: list(self.tts.sentences(greeting)))

    async def preload_answers(self) -> None:
        """Synthesize the sentences that open answers (each knowledge entry's
        confirmation, "I can't answer", "a colleague is coming") once, so the first
        audio of an answer waits only for recognition, not for the voice."""
        if self.answerer is None:
            return
        t0 = time.perf_counter()
        a = self.config.answer
        loop = asyncio.get_running_loop()
        for text in {*self.answerer.confirmations(), a.unanswered, a.handoff, a.not_heard}:
            if len(text) <= 200 and text not in self._speech_cache:
                self._speech_cache[text] = await loop.run_in_executor(
                    self.tts_pool, self._synthesize, text)
        log.info("answer openings synthesized in %.1f s", time.perf_counter() - t0)

    def _synthesize(self, text: str) -> list[Utterance]:
        return list(self.tts.sentences(text))

    def cached_speech(self, text: str) -> list[Utterance] | None:
        return self._speech_cache.get(text)

    async def close(self) -> None:
        await self.tasks.cancel_all()
        if self.affect is not None:
            await self.affect.close()
        await self.events.aclose()
        self.render_pool.shutdown(wait=True, cancel_futures=True)
        self.tts_pool.shutdown(wait=True, cancel_futures=True)
        self.analysis_pool.shutdown(wait=True, cancel_futures=True)
        self.asr_pool.shutdown(wait=True, cancel_futures=True)
        self.face_analyzers.close()
        self.store.close()


def model_path(config: Config) -> Path:
    return project_path(config.affect.model)


def load_predictor(
    config: Config, whisper: bytes | None = None,
) -> tuple[AffectPredictor | None, SpeechEncoder | None, FaceExpression | None]:
    """The affect model and the speech encoder and face-expression network perception
    feeds it; (None, None, None) if any cannot load: calls then run without affect."""
    import torch

    # Batches are small and the cores are shared with rendering and perception.
    torch.set_num_threads(1)
    path = model_path(config)
    try:
        predictor = AffectPredictor.load(path, config.affect.device)
        encoder = SpeechEncoder.load(whisper)
        expression = FaceExpression.load()
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        log.error("affect disabled: %s", exc)
        return None, None, None
    log.info("affect model %s on %s", path, predictor.device)
    return predictor, encoder, expression


def load_understanding(
    config: Config, whisper: bytes | None = None,
) -> tuple[Transcriber | None, Answerer | None]:
    """Speech recognition and the answerer, loaded once; a bad knowledge file stops
    start-up (ConfigError), missing weights only turn recognition off."""
    entries = []
    if config.knowledge.path is not None:
        entries = load_knowledge(project_path(config.knowledge.path))
    if not config.asr.enabled:
        return None, None
    a = config.asr
    try:
        # CTranslate2 recognises on worker threads of its own: counted as "asr"
        with claim_new_threads("asr"):
            transcriber = Transcriber.load(a.language, a.compute_type, a.threads,
                                           blob=whisper, min_context_s=a.min_context_s)
            transcriber.transcribe(np.zeros(RATE, np.float32))  # first run allocates
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        log.error("speech recognition disabled: %s", exc)
        return None, None
    return transcriber, make_answerer(config, entries)


def make_answerer(config: Config, entries: list[Entry]) -> Answerer:
    knowledge = KnowledgeAnswerer(entries, config.knowledge.min_score)
    ans = config.answer
    if ans.backend == "openai":
        return OpenAIAnswerer(knowledge, ans.base_url, ans.model, ans.api_key_env, ans.timeout_s)
    return knowledge


def _whisper_weights() -> bytes | None:
    """Whisper base's checked weights, or None (each user then reports the error)."""
    try:
        return read_weights()
    except (FileNotFoundError, ValueError):
        return None


def _warm_perception() -> None:
    """Import and initialise voice activity detection once, before the first call
    (the face mesh is warmed in the server's kept analysers: `Runtime.start`)."""
    import numpy as np

    from avatar_agent.perception.vad import VoiceActivity

    VoiceActivity().push(np.zeros(512, np.float32))
