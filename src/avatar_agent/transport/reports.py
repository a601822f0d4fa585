"""RTCP sender reports read from the media clock, so a frame sent late does not move
lip-sync.

A receiver (a browser, or `testing.measure`) lines audio up with video through each
track's sender reports: every report pairs an RTP timestamp with a wall-clock (NTP)
time, and RFC 3550 asks that both name the same instant. aiortc (1.16) pairs the RTP
timestamp of the last packet sent with the moment that packet left. For audio the two
are nearly the same; a video frame, though, leaves after it was drawn and encoded, and
on a busy server (the first keyframe, a render pool behind) far later than its place
on the call's media clock. Its report then says the picture was taken later than it
was, the browser holds the video back by that much, and the voice runs ahead of the
mouth: -197 ms at the start of a loaded call, -20 to -77 ms under steady load.

Both tracks place their frames on one media clock (`core.clock.MediaClock`), so the
right pairing is known: each encoded frame's RTP timestamp and its pts are noted as it
is encoded (:class:`ClockedEncoder`), and each report's NTP time is set to the wall
time of the media moment its RTP timestamp stands for (:class:`SenderClock`).

aiortc keeps the RTP timestamp origin and the report fields in name-mangled private
attributes of `RTCRtpSender`; where they are not there (another aiortc), a warning is
logged and the reports stay aiortc's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc import clock as rtc_clock
from aiortc.codecs import get_encoder
from aiortc.rtp import RtcpSrPacket
from av.frame import Frame

from avatar_agent.transport.encoder import AvatarVp8Encoder

log = logging.getLogger(__name__)

_LAST_RTP = "_RTCRtpSender__rtp_timestamp"
_PACKETS = "_RTCRtpSender__packet_count"
_ENCODER = "_RTCRtpSender__encoder"
_LSR = "_RTCRtpSender__lsr"
_NTP_UNIT = 2**32  # NTP timestamps are 32.32 fixed point


def _signed32(x: int) -> int:
    x %= 2**32
    return x - 2**32 if x >= 2**31 else x


class SenderClock:
    """Maps one sender's RTP timestamps to media time. Pure: no clock, no I/O.

    aiortc stamps a packet ``origin + ts``: ``ts`` is what the encoder returned for
    it, and ``origin`` a random number aiortc keeps to itself. aiortc encodes a frame
    only after every packet of the one before has gone, so as a frame is handed to the
    encoder, the sender's last RTP timestamp belongs to the last frame that gave
    packets: the difference is the origin.

    The encoders' ``ts`` follow their input's pts from the first packet on (video
    frame for frame; Opus counts 48 kHz samples from the first input, a jump in the
    input's pts included), so one pair, the first packet's ``ts`` and the media time of
    the first frame put in, maps every later ``ts``. Opus may hold the first frame
    back (resampling) and return its packet on the next call: the pair still names
    the first frame.
    """

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.origin: int | None = None
        self._first: tuple[int, float] | None = None  # (ts, media time)
        self._last_ts: int | None = None

    def before_encode(self, last_rtp: int, packets_sent: int) -> None:
        """The sender's state as the next frame is handed to the encoder."""
        if self.origin is None and packets_sent > 0 and self._last_ts is not None:
            self.origin = (last_rtp - self._last_ts) % 2**32

    def encoded(self, ts: int, first_input_t: float) -> None:
        """The encoder gave packets stamped ``ts``; ``first_input_t`` is the media time
        of the first frame it was ever given."""
        if self._first is None:
            self._first = (ts, first_input_t)
        self._last_ts = ts

    def media_time(self, rtp: int) -> float | None:
        """The media time of RTP timestamp ``rtp``, or None before the origin is known."""
        if self.origin is None or self._first is None:
            return None
        ts0, t0 = self._first
        return t0 + _signed32(rtp - self.origin - ts0) / self.clock_rate


class ClockedEncoder:
    """An aiortc encoder whose packets' media times are noted in a `SenderClock`."""

    def __init__(self, inner: Any, sender: Any, clock: SenderClock) -> None:
        self._inner = inner
        self._sender = sender
        self._clock = clock
        self._first_input: float | None = None

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], Any]:
        if self._clock.origin is None:  # the first frames: what the mapping needs
            self._clock.before_encode(int(getattr(self._sender, _LAST_RTP, 0)),
                                      int(getattr(self._sender, _PACKETS, 0)))
            if self._first_input is None and frame.pts is not None and frame.time_base:
                self._first_input = float(frame.pts * frame.time_base)
        payloads, ts = self._inner.encode(frame, force_keyframe)
        if payloads and self._first_input is not None and self._clock.origin is None:
            self._clock.encoded(int(ts), self._first_input)
        return payloads, ts

    def pack(self, packet: Any) -> Any:
        return self._inner.pack(packet)

    # aiortc sets the video bitrate from the browser's estimates, where the encoder has one
    @property
    def target_bitrate(self) -> int:
        return int(self._inner.target_bitrate)

    @target_bitrate.setter
    def target_bitrate(self, value: int) -> None:
        self._inner.target_bitrate = value


def ntp_at(media_t: float, media_now: float, ntp_now: int) -> int:
    """The NTP timestamp of media time ``media_t``, the media clock reading ``media_now``
    at NTP time ``ntp_now``."""
    return ntp_now + round((media_t - media_now) * _NTP_UNIT)


def _restamp(sender: Any, clock: SenderClock, media_now: Callable[[], float]) -> None:
    """Rewrite the NTP time of the sender reports `sender` sends, from `clock`."""
    original = sender._send_rtcp

    async def send_rtcp(packets: list[Any]) -> None:
        for packet in packets:
            if not isinstance(packet, RtcpSrPacket):
                continue
            info = packet.sender_info
            media_t = clock.media_time(info.rtp_timestamp)
            if media_t is None:
                continue  # nothing encoded yet: aiortc's own pairing stands
            info.ntp_timestamp = ntp_at(media_t, media_now(), rtc_clock.current_ntp_time())
            # the receiver echoes this report's middle NTP bits; aiortc matches them
            # against this to measure the round trip
            setattr(sender, _LSR, (info.ntp_timestamp >> 16) & 0xFFFFFFFF)
        await original(packets)

    sender._send_rtcp = send_rtcp


def use_media_clock(pc: RTCPeerConnection, tracks: Iterable[Any],
                    media_now: Callable[[], float]) -> dict[str, str]:
    """Give the senders of ``tracks`` encoders that note media times (the avatar's VP8
    encoder for VP8 video, aiortc's own otherwise) and reports stamped from them.

    ``media_now`` reads the media clock the tracks' pts are on. Call after
    `setLocalDescription` (the codecs are known) and before media flows. Returns, per
    track kind, the encoder it got: "avatar_vp8", "aiortc" (the codec's own, reports
    restamped) or "aiortc_unstamped" (this aiortc keeps its sender elsewhere).
    """
    wanted = list(tracks)
    out: dict[str, str] = {}
    for transceiver in pc.getTransceivers():
        sender = transceiver.sender
        if sender.track is None or not any(sender.track is t for t in wanted):
            continue
        kind = sender.track.kind
        codecs = getattr(transceiver, "_codecs", None)
        needed = (_ENCODER, _LAST_RTP, _PACKETS, _LSR, "_send_rtcp")
        if not codecs or not all(hasattr(sender, a) for a in needed):
            log.warning("aiortc keeps no sender state where expected: the %s track's "
                        "reports stay send-time stamped", kind)
            out[kind] = "aiortc_unstamped"
            continue
        codec = codecs[0]
        avatar = str(codec.mimeType).lower() == "video/vp8"
        inner = AvatarVp8Encoder() if avatar else get_encoder(codec)
        clock = SenderClock(int(codec.clockRate))
        setattr(sender, _ENCODER, ClockedEncoder(inner, sender, clock))
        _restamp(sender, clock, media_now)
        out[kind] = "avatar_vp8" if avatar else "aiortc"
    return out
