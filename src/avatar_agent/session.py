"""One call: wires the avatar, speech and transport together and owns their tasks.

The only place that knows every stage. Its time comes from one injected clock (the
event loop's in a server, a virtual one in tests), and the customer's media comes
from any `CallTransport`: WebRTC for a browser, `MemoryTransport` for a call held
in-process.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc import MediaStreamTrack, RTCSessionDescription

from avatar_agent.affect.live import CallAffect
from avatar_agent.avatar.animator import CueAnimator
from avatar_agent.avatar.live_cues import CallCues
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.avatar.stream import AvatarStream
from avatar_agent.avatar.tracks import AvatarAudioTrack, AvatarVideoTrack
from avatar_agent.core.aio import TaskSet
from avatar_agent.core.clock import Clock, LoopClock, MediaClock
from avatar_agent.core.config import project_path
from avatar_agent.core.events import (
    CallEnded,
    CallStarted,
    Event,
    HumanRequested,
    SpeechEvent,
    Transcript,
    Unanswered,
)
from avatar_agent.core.faults import StageFaults
from avatar_agent.perception.live import CallPerception, run_onset, run_voice_activity
from avatar_agent.perception.onset import OnsetDetector
from avatar_agent.perception.turn_audio import TurnAudio
from avatar_agent.perception.vad import VadEvent
from avatar_agent.speech.answers import Answer
from avatar_agent.speech.call_speech import CallSpeech
from avatar_agent.speech.playout import Playout, PlayoutEvent
from avatar_agent.speech.understanding import CallUnderstanding
from avatar_agent.transport.base import CallTransport
from avatar_agent.transport.webrtc import WebRTCTransport

if TYPE_CHECKING:
    from avatar_agent.runtime import Runtime

log = logging.getLogger(__name__)

OUTPUT_RATE = 48000


class CallSession:
    def __init__(
        self,
        call_id: str,
        consent_analysis: bool,
        runtime: Runtime,
        on_closed: Callable[[CallSession], None],
        clock: Clock | None = None,
    ) -> None:
        self.call_id = call_id
        self.consent_analysis = consent_analysis
        self.rt = runtime
        self.end_reason: str | None = None
        self._on_closed = on_closed
        self.clock: Clock = clock or LoopClock()
        # Audio and video out, and every media time the call reports, are on this clock.
        self.media = MediaClock(self.clock)
        self._tasks = TaskSet(f"call-{call_id[:8]}")
        # Every stage's failures: counted, each kind logged once; none ends the call.
        self.faults = StageFaults(call_id, runtime.metrics)
        self._closing: asyncio.Task[None] | None = None
        self._greeted = False
        self.transport: CallTransport | None = None
        self.stream: AvatarStream | None = None
        self.perception: CallPerception | None = None
        self.affect: CallAffect | None = None
        self.cues: CallCues | None = None
        self.speech: CallSpeech | None = None
        self._video_out: AvatarVideoTrack | None = None
        self.started_at = time.time()  # wall clock, for the operators' call list

    @property
    def media_flowing(self) -> bool:
        """The customer's peer has connected (once); until then the call is half-open."""
        return self._greeted

    def media_time(self) -> float:
        """Seconds on the call's media clock (0 before media starts)."""
        return self.media.peek()

    async def start(self, sdp: str, kind: str) -> RTCSessionDescription:
        """Answer the customer's offer; raises OfferError for an offer we cannot take."""
        cfg = self.rt.config
        t0 = time.perf_counter()
        tracks = await self.prepare()
        transport = WebRTCTransport(
            tracks,
            ice_servers=cfg.server.ice_servers,
            metrics=self.rt.metrics,
            on_end=self.request_end,
            on_connected=self.connected,
            on_message=self.customer_message,
            heartbeat_timeout=cfg.call.heartbeat_timeout_s,
            clock=self.clock,
            max_candidates=cfg.call.max_remote_candidates,
            media_now=self.media.peek,
        )
        try:
            answer = await transport.answer(sdp, kind)
        except BaseException:
            await transport.close()
            raise
        await self.attach(transport)
        self.rt.metrics.stage_seconds.labels("call_setup").observe(time.perf_counter() - t0)
        return answer

    async def prepare(self) -> list[MediaStreamTrack]:
        """Build the avatar and its outgoing tracks, for a transport to carry."""
        cfg = self.rt.config
        renderer = await asyncio.get_running_loop().run_in_executor(
            self.rt.render_pool,
            AvatarRenderer,
            self.rt.avatar_dir,
            cfg.avatar.width,
            cfg.avatar.height,
        )
        self.stream = AvatarStream(
            renderer.render,
            CueAnimator(seed=zlib.crc32(self.call_id.encode())),
            Playout(OUTPUT_RATE),
        )
        self._video_out = AvatarVideoTrack(
            self.stream, self.media, cfg.avatar.fps, self.rt.render_pool, self.rt.metrics,
            faults=self.faults)
        audio = AvatarAudioTrack(self.stream, self.media, self.rt.metrics, self._speech_event)
        return [self._video_out, audio]

    async def attach(self, transport: CallTransport) -> None:
        """Start the call's stages on a transport carrying the tracks of `prepare`."""
        assert self.stream is not None, "prepare() first"
        self.transport = transport
        await self.rt.store.call_started(self.call_id, self.consent_analysis)
        self.rt.events.publish(CallStarted(call_id=self.call_id,
                                           consent_analysis=self.consent_analysis))
        self._start_speech(self.stream, transport)
        if self.consent_analysis:
            self._start_perception(transport)
        self._start_cues(self.stream, transport)
        self._tasks.spawn(self._connect_watchdog(self.rt.config.call.connect_timeout_s),
                          "connect-watchdog")

    def _send(self, event: Event) -> None:
        if self.transport is not None:
            self.transport.send_event(event)

    def _start_cues(self, stream: AvatarStream, transport: CallTransport) -> None:
        """Body language for every call; without consent the customer reads as calm."""
        self.cues = CallCues(
            stream,
            project_path(self.rt.config.avatar.behavior),
            lambda: self.affect.last if self.affect is not None else None,
            lambda: self.speech is not None and self.speech.turns.customer_speaking,
            self.media_time,
            self._send,
            clock=self.clock,
            pool=self.rt.render_pool,
            faults=self.faults,
        )
        self._tasks.spawn(self.cues.run(), "cues")

    def _start_speech(self, stream: AvatarStream, transport: CallTransport) -> None:
        """Speech and turn-taking for every call. Without consent only voice activity
        runs (no prosody, no affect, nothing kept), so barge-in and replies still work."""
        understanding, audio = None, None
        if self.rt.transcriber is not None and self.rt.answerer is not None:
            # Every call is transcribed, consent or not: the agent must understand to help.
            audio = TurnAudio()
            understanding = CallUnderstanding(
                self.rt.transcriber, self.rt.answerer, self.rt.asr_pool, audio,
                self.rt.metrics, self._transcript)
        self.speech = CallSpeech(
            self.call_id, self.rt.config, self.rt, stream.playout, self.media,
            self._speech_event, self._tasks.spawn, self._level,
            lambda: stream.targets.speech_rate, understanding, self._answered,
            faults=self.faults,
        )
        if transport.audio_in is not None:
            b = self.rt.config.barge_in
            self._tasks.spawn(run_voice_activity(
                transport.audio_in, self.rt.analysis_pool, self.media_time,
                self._voice_event, min_speech_s=self.rt.config.replies.speech_start_s,
                keep=audio, faults=self.faults,
            ), "voice-activity")
            self._tasks.spawn(run_onset(
                transport.audio_in,
                OnsetDetector(b.onset_rise_db, b.onset_min_dbfs, b.onset_frames),
                self.speech.onset,
            ), "onset")

    def _level(self) -> tuple[str | None, float | None]:
        """The customer's level and since when, for the reply; (None, None) without affect."""
        if self.affect is None or self.affect.last is None:
            return None, None
        return self.affect.last.level, self.affect.core.state.levels.since

    def _start_perception(self, transport: CallTransport) -> None:
        """Analyse the customer's face and voice; only ever called with consent."""
        self.perception = CallPerception(
            self.rt.config.perception,
            self.rt.analysis_pool,
            self.rt.metrics,
            self.media_time,
            self.rt.speech_encoder,
            self.rt.face_expression,
            clock=self.clock,
            media_behind=self._video_skips,
            faults=self.faults,
            analyzers=self.rt.face_analyzers,
        )
        if transport.video_in is not None:
            self._tasks.spawn(self.perception.run_face(transport.video_in), "face")
        if transport.audio_in is not None:
            self._tasks.spawn(self.perception.run_voice(transport.audio_in), "voice")
        if self.rt.affect is not None or self.rt.affect_script is not None:
            self.affect = CallAffect(
                self.call_id,
                self.rt.config.affect,
                self.rt.affect,
                self.perception,
                self.rt.metrics,
                self.media_time,
                send=self._send,
                publish=self.rt.events.publish,
                store=self._store_timeline,
                script=self.rt.affect_script,
                clock=self.clock,
                faults=self.faults,
            )
            self._tasks.spawn(self.affect.run(), "affect")

    async def _store_timeline(
        self, points: list[dict[str, Any]], events: list[dict[str, Any]]
    ) -> None:
        await self.rt.store.add_timeline(self.call_id, points, events)

    def _voice_event(self, ev: VadEvent) -> None:
        """Customer speech start/end: turn-taking and barge-in."""
        self.rt.metrics.customer_speech.labels(ev.kind).inc()
        if self.speech is not None:
            self.speech.voice_event(ev)

    # --- speech -----------------------------------------------------------------

    def say(self, text: str) -> None:
        """Speak text after whatever is already queued, at the current speech rate;
        apologising text is tagged so the avatar's cues follow it."""
        if self.speech is not None:
            self.speech.say(text)

    def _speech_event(self, ev: PlayoutEvent) -> None:
        event = SpeechEvent(call_id=self.call_id, event=ev.event, text=ev.text,
                            t=ev.sample / OUTPUT_RATE, interrupted=ev.interrupted)
        self._send(event)
        self.rt.events.publish(event)
        if ev.event == "start":
            # The avatar's captions are the call's transcript; kept so it outlives the call.
            self._tasks.spawn(self.rt.store.add_events(
                self.call_id, [{"t": event.t, "kind": "caption", "text": ev.text}]
            ), "store-caption")

    def _transcript(self, text: str, t_start: float, t_end: float) -> None:
        """The customer's words of one turn: to their page, the operators and the store."""
        event = Transcript(call_id=self.call_id, role="customer", text=text,
                           t_start=t_start, t_end=t_end)
        self._send(event)
        self.rt.events.publish(event)
        self._tasks.spawn(self.rt.store.add_events(self.call_id, [
            {"t": t_start, "kind": "transcript", "role": "customer", "text": text,
             "t_end": t_end}]), "store-transcript")

    def _answered(self, answer: Answer, text: str, t: float) -> None:
        """The agent could not answer, or the customer asked for a person in words."""
        if answer.kind == "person":
            self.request_human()
        elif answer.kind == "unanswered":
            event = Unanswered(call_id=self.call_id, t=t, text=text, score=answer.score)
            self.rt.events.publish(event)
            self._tasks.spawn(self.rt.store.add_events(self.call_id, [
                {"t": t, "kind": "unanswered", "text": text, "score": answer.score}
            ]), "store-unanswered")

    def customer_message(self, msg: dict[str, Any]) -> None:
        """A message from the customer's page on the `agent` channel (besides pings)."""
        if msg.get("type") == "human":
            self.request_human()

    def request_human(self) -> None:
        """The customer asked to talk to a person: the escalation policy decides."""
        event = HumanRequested(call_id=self.call_id, t=self.media_time())
        log.info("call %s: the customer asked for a person", self.call_id)
        self.rt.events.publish(event)
        self._tasks.spawn(self.rt.store.add_events(
            self.call_id, [{"t": event.t, "kind": "human_request"}]
        ), "store-request")

    def _video_skips(self) -> int:
        """Avatar frames skipped so far because the machine fell behind."""
        return self._video_out.skipped if self._video_out is not None else 0

    # --- lifecycle ----------------------------------------------------------------

    def connected(self) -> None:
        """Media flows: greet the customer (once)."""
        if not self._greeted:
            self._greeted = True
            self.say(self.rt.config.tts.greeting)

    async def _connect_watchdog(self, delay: float) -> None:
        await self.clock.sleep_until(self.clock.now() + delay)
        if not self._greeted:
            self.request_end("connect_timeout")

    def request_end(self, reason: str) -> None:
        """End the call from a callback; the closing runs outside the call's own tasks."""
        if self._closing is None:
            self._closing = self.rt.tasks.spawn(self.close(reason), f"close-{self.call_id[:8]}")

    async def close(self, reason: str) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        log.info("call %s ended: %s", self.call_id, reason)
        try:
            await self._tasks.cancel_all()
            if self.transport is not None:
                await self.transport.close()
        finally:
            self.faults.summary()
            try:
                await self.rt.store.call_ended(self.call_id, reason)
            finally:
                self.rt.events.publish(CallEnded(call_id=self.call_id, reason=reason))
                self._on_closed(self)
