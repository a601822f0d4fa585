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
from avatar_agent.aio import TaskSet
from avatar_agent.avatar.animator import IdleAnimator
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.avatar.stream import AvatarStream
from avatar_agent.perception.live import CallPerception
from avatar_agent.perception.vad import VadEvent
from avatar_agent.speech.playout import Playout, SpeechEvent
from avatar_agent.speech.tts import stream_sentences
from avatar_agent.speech.types import Utterance
from avatar_agent.transport.webrtc import WebRTCTransport

if TYPE_CHECKING:
    from avatar_agent.runtime import Runtime

log = logging.getLogger(__name__)

OUTPUT_RATE = 48000
# Speech starts this far after "now" on the media clock, so its first words are not
# cut while the customer's jitter buffer fills.
SPEECH_LEAD_S = 0.25


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
        self.customer_speaking = False
        self.voice_listeners: list[Callable[[VadEvent], None]] = []

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
            IdleAnimator(seed=zlib.crc32(self.call_id.encode())),
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
        if self.consent_analysis:
            self._start_perception(self.transport)
        self._tasks.spawn(self._connect_watchdog(cfg.call.connect_timeout_s), "connect-watchdog")
        self.rt.metrics.stage_seconds.labels("call_setup").observe(time.perf_counter() - t0)
        return answer

    def _start_perception(self, transport: WebRTCTransport) -> None:
        """Analyse the customer's face and voice; only ever called with consent."""
        self.perception = CallPerception(
            self.rt.config.perception,
            self.rt.analysis_pool,
            self.rt.metrics,
            transport.media_time,
            on_voice_event=self._voice_event,
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
        """Customer speech start/end: published to the call's listeners (barge-in)."""
        self.customer_speaking = ev.kind == "speech_start"
        self.rt.metrics.customer_speech.labels(ev.kind).inc()
        for listener in list(self.voice_listeners):
            listener(ev)

    # --- speech -----------------------------------------------------------------

    def say(self, text: str) -> None:
        """Speak text after whatever is already queued."""
        self._tasks.spawn(self._say(text), "say")

    async def _say(self, text: str) -> None:
        assert self.stream is not None and self.transport is not None
        cached = self.rt.cached_speech(text)
        if cached is not None:
            for utt in cached:
                self._enqueue(utt)
            return
        t0 = time.perf_counter()
        async for utt in stream_sentences(self.rt.tts, text, self.rt.tts_pool):
            self.rt.metrics.stage_seconds.labels("tts_sentence").observe(time.perf_counter() - t0)
            self._enqueue(utt)
            t0 = time.perf_counter()

    def _enqueue(self, utt: Utterance) -> None:
        assert self.stream is not None and self.transport is not None
        now = round((self.transport.media_time() + SPEECH_LEAD_S) * OUTPUT_RATE)
        self.stream.playout.enqueue(utt, now)

    def _speech_event(self, ev: SpeechEvent) -> None:
        if self.transport is not None:
            self.transport.send_event(
                {"type": "speech", "event": ev.event, "text": ev.text, "t": ev.sample / OUTPUT_RATE}
            )

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
