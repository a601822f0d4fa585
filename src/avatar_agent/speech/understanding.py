"""What one call's agent understands of its customer: words in, an answer out.

The async shell around speech recognition and answering. A finished turn is cut
out of the call's in-memory audio (`TurnAudio`) and transcribed in the server's
one-worker recognition pool (never on the event loop, never in the analysis pool,
whose voice activity and face analysis must not wait behind it); the transcript
goes to the customer's page, the operators' bus and the call's stored timeline
through `heard`, and the answerer (knowledge base or chat endpoint) decides what
to say. Runs for every call, with
or without analysis consent: the agent must understand to help, and nothing about
emotion is computed here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from avatar_agent.core.metrics import Metrics
from avatar_agent.perception.turn_audio import TurnAudio
from avatar_agent.speech.answers import Answer, Answerer
from avatar_agent.speech.asr import Transcriber

log = logging.getLogger(__name__)

# Speech around the VAD's times: its start is a chunk late, its end a little early.
PAD_BEFORE_S = 0.3
PAD_AFTER_S = 0.2


class CallUnderstanding:
    def __init__(
        self,
        transcriber: Transcriber,
        answerer: Answerer,
        pool: Executor,
        audio: TurnAudio,
        metrics: Metrics,
        on_transcript: Callable[[str, float, float], None],
    ) -> None:
        self.transcriber = transcriber
        self.answerer = answerer
        self.pool = pool
        self.audio = audio
        self._metrics = metrics
        self._on_transcript = on_transcript
        self.history: list[tuple[str, str]] = []  # (role, text), oldest first

    async def transcribe(self, t_start: float, t_end: float) -> str:
        """The customer's words between two media times (blocking work in the pool)."""
        samples = self.audio.clip(t_start - PAD_BEFORE_S, t_end + PAD_AFTER_S)
        if samples.size == 0:
            return ""
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self.pool, self.transcriber.transcribe, samples)
        self._metrics.stage_seconds.labels("asr").observe(out.compute_s)
        log.info("heard %.1f s of speech in %.2f s", out.audio_s, out.compute_s)
        return out.text

    def heard(self, text: str, t_start: float, t_end: float) -> None:
        """A final transcript of the customer's turn."""
        self.history.append(("customer", text))
        self._on_transcript(text, t_start, t_end)

    async def answer(self, text: str) -> Answer:
        t0 = time.perf_counter()
        answer = await self.answerer.answer(text, list(self.history))
        self._metrics.stage_seconds.labels("answer").observe(time.perf_counter() - t0)
        return answer

    def said(self, text: str) -> None:
        self.history.append(("agent", text))
