"""One call: wires the avatar, speech and transport together and owns their tasks."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc import RTCSessionDescription

from avatar_agent.affect.live import CallAffect
from avatar_agent.avatar.animator import CueAnimator
from avatar_agent.avatar.live_cues import CallCues
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.avatar.stream import AvatarStream
from avatar_agent.core.aio import TaskSet
from avatar_agent.core.config import project_path
from avatar_agent.perception.live import CallPerception, run_onset, run_voice_activity
from avatar_agent.perception.onset import OnsetDetector
from avatar_agent.perception.vad import VadEvent
from avatar_agent.speech.call_speech import CallSpeech
from avatar_agent.speech.playout import Playout, SpeechEvent
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
    ) -> None:
        self.call_id = call_id
        self.consent_analysis = consent_analysis
        self.rt = runtime
        self.end_reason: str | None = None
        self._on_closed = on_closed
        self._tasks = TaskSet(f"call-{call_id[:8]}")
        self._closing: asyncio.Task[None] | None = None
        self._greeted = False
        self.transport: WebRTCTransport | None = None
        self.stream: AvatarStream | None = None
        self.perception: CallPerception | None = None
        self.affect: CallAffect | None = None
        self.cues: CallCues | None = None
        self.speech: CallSpeech | None = None
        self.started_at = time.time()  # wall clock, for the operators' call list

    async def start(self, sdp: str, kind: str) -> RTCSessionDescription:
        """Answer the customer's offer; raises OfferError for an offer we cannot take."""
        cfg = self.rt.config
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        renderer = await loop.run_in_executor(
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
        self.transport = WebRTCTransport(
            self.stream,
            fps=cfg.avatar.fps,
            ice_servers=cfg.server.ice_servers,
            render_pool=self.rt.render_pool,
            metrics=self.rt.metrics,
            on_end=self.request_end,
            on_connected=self._connected,
            on_speech=self._speech_event,
            on_message=self._customer_message,
            heartbeat_timeout=cfg.call.heartbeat_timeout_s,
        )
        try:
            answer = await self.transport.answer(sdp, kind)
        except BaseException:
            await self.transport.close()
            raise
        await self.rt.store.call_started(self.call_id, self.consent_analysis)
        self.rt.events.publish({"type": "call", "event": "started", "call_id": self.call_id,
                                "consent_analysis": self.consent_analysis})
        self._start_speech(self.stream, self.transport)
        if self.consent_analysis:
            self._start_perception(self.transport)
        self._start_cues(self.stream, self.transport)
        self._tasks.spawn(self._connect_watchdog(cfg.call.connect_timeout_s), "connect-watchdog")
        self.rt.metrics.stage_seconds.labels("call_setup").observe(time.perf_counter() - t0)
        return answer

    def _start_cues(self, stream: AvatarStream, transport: WebRTCTransport) -> None:
        """Body language for every call; without consent the customer reads as calm."""
        self.cues = CallCues(
            stream,
            project_path(self.rt.config.avatar.behavior),
            lambda: self.affect.last if self.affect is not None else None,
            lambda: self.speech is not None and self.speech.turns.customer_speaking,
            transport.media_time,
            transport.send_event,
        )
        self._tasks.spawn(self.cues.run(), "cues")

    def _start_speech(self, stream: AvatarStream, transport: WebRTCTransport) -> None:
        """Speech and turn-taking for every call. Without consent only voice activity
        runs (no prosody, no affect, nothing kept), so barge-in and replies still work."""
        self.speech = CallSpeech(
            self.call_id, self.rt.config, self.rt, stream.playout, transport.media_time,
            self._speech_event, self._tasks.spawn, self._level,
            lambda: stream.targets.speech_rate,
        )
        if transport.audio_in is not None:
            b = self.rt.config.barge_in
            self._tasks.spawn(run_voice_activity(
                transport.audio_in, self.rt.analysis_pool, transport.media_time,
                self._voice_event, min_speech_s=self.rt.config.replies.speech_start_s,
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

    def _start_perception(self, transport: WebRTCTransport) -> None:
        """Analyse the customer's face and voice; only ever called with consent."""
        self.perception = CallPerception(
            self.rt.config.perception,
            self.rt.analysis_pool,
            self.rt.metrics,
            transport.media_time,
            self.rt.speech_encoder,
            self.rt.face_expression,
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
                transport.media_time,
                send=transport.send_event,
                publish=self.rt.events.publish,
                store=self._store_timeline,
                script=self.rt.affect_script,
            )
            self._tasks.spawn(self.affect.run(), "affect")

    async def _store_timeline(
        self, points: list[dict[str, Any]], events: list[dict[str, Any]]
    ) -> None:
        await self.rt.store.add_affect_points(self.call_id, points)
        await self.rt.store.add_events(self.call_id, events)

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

    def _speech_event(self, ev: SpeechEvent) -> None:
        msg: dict[str, Any] = {"type": "speech", "event": ev.event, "text": ev.text,
                               "t": ev.sample / OUTPUT_RATE}
        if ev.interrupted:
            msg["interrupted"] = True  # cut short by the customer (barge-in)
        if self.transport is not None:
            self.transport.send_event(msg)
        self.rt.events.publish({**msg, "call_id": self.call_id})
        if ev.event == "start":
            # The avatar's captions are the call's transcript; kept so it outlives the call.
            self._tasks.spawn(self.rt.store.add_events(
                self.call_id, [{"t": msg["t"], "kind": "caption", "text": ev.text}]
            ), "store-caption")

    def _customer_message(self, msg: dict[str, Any]) -> None:
        """A message from the customer's page on the `agent` channel (besides pings)."""
        if msg.get("type") == "human":
            self.request_human()

    def request_human(self) -> None:
        """The customer asked to talk to a person: the escalation policy decides."""
        t = self.transport.media_time() if self.transport is not None else 0.0
        log.info("call %s: the customer asked for a person", self.call_id)
        self.rt.events.publish({"type": "customer", "event": "human_request",
                                "call_id": self.call_id, "t": t})
        self._tasks.spawn(self.rt.store.add_events(
            self.call_id, [{"t": t, "kind": "human_request"}]
        ), "store-request")

    # --- lifecycle ----------------------------------------------------------------

    def _connected(self) -> None:
        if not self._greeted:
            self._greeted = True
            self.say(self.rt.config.tts.greeting)

    async def _connect_watchdog(self, delay: float) -> None:
        await asyncio.sleep(delay)
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
            try:
                await self.rt.store.call_ended(self.call_id, reason)
            finally:
                self.rt.events.publish({"type": "call", "event": "ended",
                                        "call_id": self.call_id, "reason": reason})
                self._on_closed(self)
