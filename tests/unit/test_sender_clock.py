"""`SenderClock`: RTP timestamps of a sender back to the media clock (pure)."""

from __future__ import annotations

import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack

from avatar_agent.transport.reports import SenderClock, ntp_at, use_media_clock

ORIGIN = 4_294_000_000  # near the top of 32 bits: later timestamps wrap past zero


def _send(clock: SenderClock, frames: list[tuple[int, float]], first_input: float) -> int:
    """Frames through encoder and sender as aiortc 1.16 orders them; the last RTP ts."""
    last_rtp, sent = 0, 0
    for ts, _t in frames:
        clock.before_encode(last_rtp, sent)
        clock.encoded(ts, first_input)
        last_rtp, sent = (ORIGIN + ts) % 2**32, sent + 1
    return last_rtp


def test_video_timestamps_map_to_their_frames_media_time() -> None:
    clock = SenderClock(90000)
    frames = [(round(t * 90000), t) for t in (2.0, 2.0 + 1 / 30, 2.1, 2.5)]  # 2.1: a skip
    last = _send(clock, frames, first_input=2.0)
    assert clock.origin == ORIGIN
    assert clock.media_time(last) == pytest.approx(2.5)
    assert clock.media_time((ORIGIN + round(2.1 * 90000)) % 2**32) == pytest.approx(2.1)


def test_audio_counts_from_the_first_frame_put_in_even_when_its_packet_comes_later() -> None:
    """Opus at 22.05 kHz holds the first frame back: the first packet (ts 0) comes out
    of the second call, and still carries the first frame's audio."""
    clock = SenderClock(48000)
    clock.before_encode(0, 0)  # frame at 1.00 s in, nothing out
    last = _send(clock, [(0, 1.02), (960, 1.04), (1920, 1.06)], first_input=1.00)
    assert clock.media_time(last) == pytest.approx(1.04)


def test_nothing_is_known_before_a_packet_has_gone() -> None:
    clock = SenderClock(90000)
    assert clock.media_time(123) is None
    clock.before_encode(0, 0)
    clock.encoded(0, 0.0)
    assert clock.media_time(123) is None  # origin unknown until the sender has sent it
    clock.before_encode(ORIGIN, 1)
    assert clock.media_time((ORIGIN + 9000) % 2**32) == pytest.approx(0.1)


def test_ntp_of_a_media_time() -> None:
    now = 1000 << 32
    assert ntp_at(5.0, 5.0, now) == now
    assert ntp_at(4.5, 5.0, now) == now - (1 << 31)  # half a second before now


async def test_an_aiortc_without_the_sender_state_keeps_its_own_reports() -> None:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    offerer.addTransceiver("audio", direction="recvonly")
    offerer.addTransceiver("video", direction="recvonly")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    tracks = [AudioStreamTrack(), VideoStreamTrack()]
    senders = [answerer.addTrack(t) for t in tracks]
    await answerer.setLocalDescription(await answerer.createAnswer())
    delattr(senders[0], "_RTCRtpSender__packet_count")  # as if aiortc kept it elsewhere
    assert use_media_clock(answerer, tracks, lambda: 0.0) == {
        "audio": "aiortc_unstamped", "video": "avatar_vp8"}
    assert "_send_rtcp" not in vars(senders[0])  # untouched: aiortc's own reports
    assert "_send_rtcp" in vars(senders[1])  # the video's are restamped
    for t in tracks:
        t.stop()
    await offerer.close()
    await answerer.close()
