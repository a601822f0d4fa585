"""WebRTC transport: aiortc answers the customer's offer and carries the call's media.

It takes the avatar's outgoing tracks ready-made (`avatar.tracks`) and hands the
customer's incoming media to receivers (latest frame wins); it knows nothing of what
the tracks carry or what analyses the customer's media.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from avatar_agent.core.aio import TaskSet
from avatar_agent.core.clock import Clock, LoopClock, Ticker
from avatar_agent.core.config import IceServer
from avatar_agent.core.events import Event, encode
from avatar_agent.core.metrics import Metrics
from avatar_agent.transport.base import EndCallback
from avatar_agent.transport.receiver import Receiver
from avatar_agent.transport.reports import use_media_clock
from avatar_agent.transport.sdp import offer_problem

log = logging.getLogger(__name__)

# Backlog allowed on the data channel before events are dropped instead of queued.
MAX_CHANNEL_BUFFER = 256 * 1024


class OfferError(ValueError):
    """The customer's offer cannot be answered (bad SDP, nothing to send media on)."""


# The customer's audio is only analysed (voice activity, barge-in), never played, so
# it needs no smoothing against network jitter: one frame of prefetch releases each
# 20 ms frame as soon as the next one arrives, instead of aiortc's four (80 ms).
ANALYSIS_AUDIO_PREFETCH = 1


def analysis_only_audio(pc: RTCPeerConnection, track: MediaStreamTrack) -> bool:
    """Lower the jitter-buffer prefetch of the receiver of the remote audio `track`.

    aiortc (1.16) gives every audio receiver `JitterBuffer(capacity=16, prefetch=4)`
    in the name-mangled private `RTCRtpReceiver.__jitter_buffer`, with no public way
    to change it; a frame is handed on only once four more have arrived. When the
    attribute is not there (another aiortc), a warning is logged and nothing changes:
    calls still work, barge-in is just 60 ms slower. Returns whether it took effect.
    """
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if getattr(receiver, "track", None) is not track:
            continue
        buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
        if buffer is None or not isinstance(getattr(buffer, "_prefetch", None), int):
            log.warning("aiortc has no audio jitter-buffer prefetch to lower; "
                        "customer audio keeps aiortc's default delay")
            return False
        buffer._prefetch = ANALYSIS_AUDIO_PREFETCH
        return True
    log.warning("no receiver found for the customer's %s track", track.kind)
    return False


def rtc_configuration(servers: list[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers
        ]
    )


async def _never_start(*_args: object) -> None:
    return None


async def close_peer(pc: RTCPeerConnection) -> None:
    """`pc.close()`, and nothing of the peer starts afterwards.

    aiortc race: a peer closed while its connect step is still running (ICE checks,
    DTLS) has its senders and receivers started *after* close() stopped them; their
    RTCP tasks and decoder threads, holding the tracks (for us the whole avatar), then
    run for ever. A call hung up during set-up leaked that way. Starting is made a
    no-op first, so whatever the connect step reaches later starts nothing. That
    includes the ICE transport: the connect step starts it once per transceiver, and
    a start after close() raised `InvalidStateError` in a task nobody awaits (an
    asyncio "Task exception was never retrieved" error with its traceback in the log,
    for about one call in eight hung up during set-up).
    """
    for transceiver in pc.getTransceivers():
        setattr(transceiver.sender, "send", _never_start)  # noqa: B010 (an instance's)
        setattr(transceiver.receiver, "receive", _never_start)  # noqa: B010
    for ice in _ice_transports(pc):
        setattr(ice, "start", _never_start)  # noqa: B010
    if pc.sctp is not None:  # and the data channel's association (ConnectionError)
        setattr(pc.sctp, "start", _never_start)  # noqa: B010
    for connection in _ice_connections(pc):
        no_consent_checks_after_close(connection)
    await pc.close()


def _ice_transports(pc: RTCPeerConnection) -> list[Any]:
    """The ICE transports under a peer's DTLS transports (one with bundling)."""
    dtls = [t.sender.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls.append(pc.sctp.transport)
    found: list[Any] = []
    for transport in dtls:
        ice = getattr(transport, "transport", None)
        if ice is not None and all(ice is not i for i in found):
            found.append(ice)
    return found


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """The aioice connections under a peer's transports (one with bundling)."""
    found = [getattr(ice, "_connection", None) for ice in _ice_transports(pc)]
    return [c for c in found if c is not None]


def no_consent_checks_after_close(connection: Any) -> None:
    """aioice (0.10) race: when its checks complete just before close(), connect()
    resumes afterwards and starts consent checks on a closed connection, which has no
    pair left to check, so they never fail and never end (one task per such call, for
    the life of the server). The connection's own `query_consent` is wrapped so that,
    closing, it returns at once; on an aioice without it nothing changes."""
    original = getattr(connection, "query_consent", None)
    if original is None or not hasattr(connection, "_closing"):
        return

    async def query_consent() -> None:
        if connection._closing:
            return
        await original()

    connection.query_consent = query_consent


class WebRTCTransport:
    """One customer's peer connection (a `transport.base.CallTransport`)."""

    def __init__(
        self,
        tracks: Sequence[MediaStreamTrack],
        *,
        ice_servers: list[IceServer],
        metrics: Metrics,
        on_end: EndCallback,
        on_connected: Callable[[], None],
        on_message: Callable[[dict[str, Any]], None] | None = None,
        heartbeat_timeout: float = 10.0,
        clock: Clock | None = None,
        max_candidates: int = 32,
        media_now: Callable[[], float] | None = None,
    ) -> None:
        self._clock: Clock = clock or LoopClock()
        # The media clock the outgoing tracks' pts are on: their sender reports are
        # stamped from it (transport/reports.py). Without one, aiortc's send times.
        self._media_now = media_now
        self._max_candidates = max_candidates
        self._out = {t.kind: t for t in tracks}
        self._heartbeat_timeout = heartbeat_timeout
        self._last_heartbeat: float | None = None
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.video_in: Receiver[Any] | None = None
        self.audio_in: Receiver[Any] | None = None
        self._metrics = metrics
        self._on_end = on_end
        self._on_connected = on_connected
        self._on_message = on_message
        self._tasks = TaskSet("webrtc")
        self._channel: RTCDataChannel | None = None
        self._pending: deque[str] = deque(maxlen=32)
        self._closed = False
        self.pc.on("connectionstatechange", self._state_changed)
        self.pc.on("track", self._track)
        self.pc.on("datachannel", self._datachannel)

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        problem = offer_problem(sdp, self._max_candidates)
        if problem is not None:
            raise OfferError(f"invalid SDP offer: {problem}")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # aiortc raises many types on malformed SDP
            raise OfferError(f"invalid SDP offer: {exc or type(exc).__name__}") from None
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if not kinds & {"audio", "video"}:
            raise OfferError("the offer has no audio or video section to send the avatar on")
        for kind in ("video", "audio"):
            if kind in kinds and kind in self._out:
                self.pc.addTrack(self._out[kind])
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        if self._media_now is not None:
            encoders = use_media_clock(self.pc, self._out.values(), self._media_now)
            if "video" in encoders:
                self._metrics.video_encoders.labels(encoders["video"]).inc()
        local: RTCSessionDescription = self.pc.localDescription
        return local

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        log.info("connection state %s", state)
        if state == "connected":
            self._on_connected()
        elif state in ("failed", "closed") and not self._closed:
            self._on_end(f"connection_{state}")

    def _track(self, track: MediaStreamTrack) -> None:
        kind = track.kind
        if kind == "audio":
            analysis_only_audio(self.pc, track)
        counter = self._metrics.frames_in.labels(kind)
        dropped = self._metrics.frames_dropped.labels(kind, "receive")
        receiver: Receiver[Any] = Receiver(
            kind, track.recv, on_frame=lambda _f: counter.inc(), on_drop=dropped.inc
        )
        if kind == "video":
            self.video_in = receiver
        else:
            self.audio_in = receiver
        self._tasks.spawn(receiver.run(), f"receive-{kind}")

    def _datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "agent":
            return
        self._channel = channel
        # The page opens this channel for the whole call; it closing means the page is gone.
        channel.on("close", lambda: None if self._closed else self._on_end("customer_left"))
        channel.on("message", self._message)
        # The page pings on this channel; watching starts now, not at the first ping, so a
        # page that dies before its first ping reaches us is still noticed.
        self._last_heartbeat = self._clock.now()
        self._tasks.spawn(self._watch_heartbeat(), "heartbeat")
        while self._pending:
            self._send(self._pending.popleft())

    def _message(self, data: str | bytes) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "ping":
            self._last_heartbeat = self._clock.now()
        elif self._on_message is not None:
            self._on_message(msg)

    async def _watch_heartbeat(self) -> None:
        """End the call when the page falls silent on the `agent` channel (network lost).

        aiortc only notices a dead peer after ICE consent fails (about 30 s); the page's
        heartbeat lets us give up sooner. Peers without the channel are not watched.
        """
        ticker = Ticker(self._clock, min(1.0, self._heartbeat_timeout / 4))
        while True:
            now = await ticker.tick()
            last = self._last_heartbeat
            if last is not None and now - last > self._heartbeat_timeout:
                self._on_end("connection_lost")
                return

    def send_event(self, event: Event) -> None:
        """Send one event to the customer's page; never blocks, drops when it cannot."""
        text = json.dumps(encode(event, for_customer=True), separators=(",", ":"))
        if self._channel is None or self._channel.readyState != "open":
            if len(self._pending) == self._pending.maxlen:
                self._metrics.events_dropped.inc()
            self._pending.append(text)
            return
        self._send(text)

    def _send(self, text: str) -> None:
        ch = self._channel
        if ch is None or ch.readyState != "open" or ch.bufferedAmount > MAX_CHANNEL_BUFFER:
            self._metrics.events_dropped.inc()
            return
        ch.send(text)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for track in self._out.values():
            track.stop()
        await self._tasks.cancel_all()
        await close_peer(self.pc)
