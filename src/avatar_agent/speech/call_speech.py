"""What the avatar of one call says, and when: text, replies, turn-taking, barge-in.

The async shell around the pure parts (`TurnTaker`, `ReplyComposer`, `Playout`):
it moves voice-activity events in, synthesized sentences onto the call's playout,
and cut-short speech events out. Synthesis runs in the TTS pool, never on the loop.

Barge-in is "duck, then decide": a fast onset (a sudden sound, see `onset`) holds
the avatar at once; the VAD confirming speech within `barge_in.confirm_s` turns the
hold into a barge-in, otherwise the held speech resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from avatar_agent.core.clock import MediaClock
from avatar_agent.core.config import Config
from avatar_agent.core.faults import StageFaults
from avatar_agent.core.metrics import Metrics
from avatar_agent.perception.vad import VadEvent
from avatar_agent.speech.answers import Answer
from avatar_agent.speech.playout import Playout, PlayoutEvent
from avatar_agent.speech.replies import ReplyComposer, layer_of
from avatar_agent.speech.tts import TTSEngine, stream_sentences
from avatar_agent.speech.turns import TurnTaker
from avatar_agent.speech.types import Utterance
from avatar_agent.speech.understanding import CallUnderstanding

log = logging.getLogger(__name__)

# Speech starts this far after "now" on the media clock, so its first words are not
# cut while the customer's jitter buffer fills.
SPEECH_LEAD_S = 0.25


class Speech(Protocol):
    """What a call's speech needs from the server: the voice and its pool."""

    tts: TTSEngine
    tts_pool: Any
    metrics: Metrics

    def cached_speech(self, text: str) -> list[Utterance] | None: ...


class CallSpeech:
    def __init__(
        self,
        call_id: str,
        config: Config,
        server: Speech,
        playout: Playout,
        clock: MediaClock,
        on_speech: Callable[[PlayoutEvent], None],
        spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]],
        level: Callable[[], tuple[str | None, float | None]],
        speech_rate: Callable[[], float] = lambda: 1.0,
        understanding: CallUnderstanding | None = None,
        on_answer: Callable[[Answer, str, float], None] | None = None,
        faults: StageFaults | None = None,
    ) -> None:
        self.cfg = config
        self._faults = faults or StageFaults(call_id, server.metrics)
        self._server = server
        self.playout = playout
        self._clock = clock
        self._media_time = clock.peek
        self._on_speech = on_speech
        self._spawn = spawn
        self._level = level
        self._speech_rate = speech_rate
        r = config.replies
        self.turns = TurnTaker(r.min_turn_s, r.pause_s, r.auto, config.barge_in.confirm_s)
        self.replies = ReplyComposer(r, call_id)
        self._lock = asyncio.Lock()  # one text at a time, in the order asked
        self._pending: set[asyncio.Task[Any]] = set()
        self._hold_timer: asyncio.Task[Any] | None = None
        # Speech recognition and answers (None: replies follow the level alone).
        self.understanding = understanding
        self._on_answer = on_answer
        self._utterance_start: float | None = None  # the unanswered speech began here
        self._hearing: asyncio.Task[str] | None = None  # transcribing it
        self._heard_span = (0.0, 0.0)
        self.barge_ins = 0
        self.holds = 0  # onsets that held the avatar (barge-ins and false alarms)
        self.resumes = 0

    @property
    def busy(self) -> bool:
        """Talking, or about to: queued audio or text still being synthesized."""
        return self.playout.pending > 0 or bool(self._pending)

    # --- saying -------------------------------------------------------------------

    def say(self, text: str, layer: str | None = None) -> asyncio.Task[Any]:
        """Speak text after whatever is already queued; apologies are tagged as such."""
        return self.say_parts([(layer_of(layer, text), text)])

    def say_parts(self, parts: list[tuple[str | None, str]]) -> asyncio.Task[Any]:
        task = self._spawn(self._say(parts), "say")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _say(self, parts: list[tuple[str | None, str]]) -> None:
        async with self._lock:
            for layer, text in parts:
                try:
                    await self._say_one(layer, text)
                except Exception as exc:  # this text goes unsaid; the call and its turns go on
                    self._faults.failed("tts", exc)

    async def _say_one(self, layer: str | None, text: str) -> None:
        rate = self._speech_rate()
        speed = self.cfg.tts.speed * rate
        cached = self._server.cached_speech(text) if abs(rate - 1.0) < 1e-3 else None
        if cached is not None:
            for utt in cached:
                self._enqueue(utt, layer)
            return
        t0 = time.perf_counter()
        stage = self._server.metrics.stage_seconds.labels("tts_sentence")
        async for utt in stream_sentences(self._server.tts, text, self._server.tts_pool, speed):
            stage.observe(time.perf_counter() - t0)
            self._enqueue(utt, layer)
            t0 = time.perf_counter()

    def _enqueue(self, utt: Utterance, layer: str | None) -> None:
        if utt.layer != layer:
            utt = dataclasses.replace(utt, layer=layer)
        now = round((self._media_time() + SPEECH_LEAD_S) * self.playout.rate)
        self.playout.enqueue(utt, now)

    # --- turns ----------------------------------------------------------------------

    def voice_event(self, ev: VadEvent) -> None:
        """The customer's voice activity: barge in on speech, reply after a turn."""
        if ev.kind == "speech_start":
            if self._utterance_start is None:
                self._utterance_start = ev.t
            if self.turns.speech_start(ev.t, self.busy):
                self.barge_in()
            return
        due = self.turns.speech_end(ev.t)
        if due is not None:
            self._listen(ev.t)
            self._spawn(self._reply_when_due(due), "reply")
        elif self._hearing is None:
            self._utterance_start = None  # a burst too short to answer: forget it

    def _listen(self, t_end: float) -> None:
        """Start transcribing the utterance so far at once, while the pause runs; a
        customer who goes on talking gets the whole utterance transcribed again."""
        if self.understanding is None or self._utterance_start is None:
            return
        if self._hearing is not None:
            self._hearing.cancel()
        start = self._utterance_start
        self._hearing = self._spawn(self.understanding.transcribe(start, t_end), "asr")
        self._heard_span = (start, t_end)

    def onset(self) -> None:
        """A sudden sound from the customer (not yet known to be speech): while the
        avatar talks, hold it now and give the VAD `confirm_s` to decide."""
        b = self.cfg.barge_in
        if not b.hold or not self.turns.onset(self._media_time(), self.busy):
            return
        held_at = self._media_time()
        at = self.playout.hold(round(held_at * self.playout.rate))
        self.holds += 1
        log.info("onset: speech held at %.3f s", at / self.playout.rate)
        self._hold_timer = self._spawn(
            self._resume_unless_confirmed(held_at + b.confirm_s), "hold")

    async def _resume_unless_confirmed(self, until: float) -> None:
        await self._clock.sleep_until(until)  # the same clock the hold was placed on
        if not self.turns.holding or not self.turns.hold_expired(self._media_time()):
            return  # confirmed meanwhile: the barge-in has dropped the held speech
        lead = self.cfg.barge_in.resume_lead_s
        at = self.playout.resume(round((self._media_time() + lead) * self.playout.rate))
        self.resumes += 1
        log.info("no speech after the onset: resumed at %.3f s", at / self.playout.rate)

    def barge_in(self) -> None:
        """Stop talking now: queued, held and in-synthesis text is dropped, the audio
        and the mouth stop at the current media position."""
        for task in list(self._pending):
            task.cancel()
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        at = round(self._media_time() * self.playout.rate)
        events = self.playout.cut(at)
        self.barge_ins += 1
        log.info("barge-in at %.2f s, %d utterance(s) cut", at / self.playout.rate, len(events))
        for ev in events:
            self._on_speech(ev)

    async def _reply_when_due(self, due: float) -> None:
        await self._clock.sleep_until(due)
        if not self.turns.take_reply(self._media_time(), self.busy):
            return
        level, since = self._level()
        hearing, self._hearing = self._hearing, None
        self._utterance_start = None
        if hearing is None or self.understanding is None:
            parts = self.replies.compose(level, self._media_time(), since)
            log.info("reply to a %s customer: %s", level or "calm", [p.layer for p in parts])
            self.say_parts([(p.layer, p.text) for p in parts])
            return
        try:
            text = await hearing
        except Exception:  # one turn's failure is logged; the customer still gets a reply
            log.exception("speech recognition failed")
            text = ""
        t_start, t_end = self._heard_span
        if not text:
            self.say(self.cfg.answer.not_heard, "confirm")
            return
        self.understanding.heard(text, t_start, t_end)
        answer = await self.understanding.answer(text)
        if self._on_answer is not None:
            self._on_answer(answer, text, t_end)
        parts = self.replies.compose_answer(level, self._media_time(), answer,
                                            self.cfg.answer, since)
        log.info("answer (%s, %s %.2f) to a %s customer: %s", answer.kind, answer.entry_id,
                 answer.score, level or "calm", [p.layer for p in parts])
        for p in parts:
            self.understanding.said(p.text)
        self.say_parts([(p.layer, p.text) for p in parts])
