"""Measuring the avatar from outside, as a customer sees and hears it.

`MediaRecorder` keeps the avatar's received audio and (downscaled) video in memory,
with each frame's RTP timestamp, and the RTCP sender reports of both tracks.
aiortc restarts each received track's timestamps at 0 and does not align the two;
a browser aligns them through the sender reports, which map each track's RTP clock
to the sender's NTP wall clock. The recorder does the same: it wraps each
`RTCRtpReceiver._handle_rtcp_packet` to keep every (NTP, RTP) pair of a sender
report, and reads the RTP origin aiortc subtracted from the receiver's private
`TimestampMapper` (`_RTCRtpReceiver__timestamp_mapper._origin`, aiortc 1.x).

`ClipAudioTrack` sends a real speech clip as the customer's microphone, starting
when asked, and notes the wall-clock time its speech onset went out.

The analysis functions are pure: mouth opening per frame (the face mesh of
`perception.face`: inner-lip gap over face height), audio envelope, and their
cross-correlation.
Nothing here is written to disk.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.rtp import RtcpSrPacket

from avatar_agent.perception.face import FaceAnalyzer

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
SEND_RATE = 48000
SEND_FRAME = 960  # 20 ms
VIDEO_SIZE = (320, 240)  # frames are kept at half size: enough for the face mesh
FloatArray = npt.NDArray[np.float64]


def ntp_seconds(ntp: int) -> float:
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 2**32


@dataclass
class TrackRecord:
    kind: str
    clock_rate: int
    pts: list[int] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)  # time.time() at decode
    data: list[npt.NDArray[Any]] = field(default_factory=list)
    reports: list[tuple[float, int]] = field(default_factory=list)  # (NTP s, RTP ts)
    origin: int | None = None

    def ntp_offset(self) -> float:
        """NTP time of pts 0: median over the sender reports (each is one packet's
        send time, so render or encode jitter of that packet moves it a little)."""
        if not self.reports or self.origin is None:
            raise RuntimeError(f"no sender report for the {self.kind} track yet")
        offsets = []
        for ntp, rtp in self.reports:
            rel = (rtp - self.origin) % 2**32
            if rel >= 2**31:
                rel -= 2**32
            offsets.append(ntp - rel / self.clock_rate)
        return float(np.median(offsets))

    def times(self) -> FloatArray:
        """Each frame's time on the sender's wall clock (Unix seconds)."""
        return np.asarray(self.pts, np.float64) / self.clock_rate + self.ntp_offset()


class MediaRecorder:
    """In-memory recording of the avatar's media as received; see the module docstring."""

    def __init__(self, keep_video: bool = True) -> None:
        self.keep_video = keep_video
        self.audio = TrackRecord("audio", SEND_RATE)
        self.video = TrackRecord("video", 90000)
        self._receivers: list[Any] = []

    def attach(self, pc: RTCPeerConnection) -> None:
        """Listen to the sender reports of pc's receivers (after setRemoteDescription)."""
        for transceiver in pc.getTransceivers():
            receiver = transceiver.receiver
            rec = self.audio if transceiver.kind == "audio" else self.video
            original = receiver._handle_rtcp_packet

            async def handle(packet: Any, _o: Any = original, _r: TrackRecord = rec) -> None:
                if isinstance(packet, RtcpSrPacket):
                    info = packet.sender_info
                    _r.reports.append((ntp_seconds(info.ntp_timestamp), info.rtp_timestamp))
                await _o(packet)

            receiver._handle_rtcp_packet = handle  # type: ignore[method-assign]
            self._receivers.append((receiver, rec))

    def add(self, frame: av.AudioFrame | av.VideoFrame) -> None:
        now = time.time()
        if isinstance(frame, av.AudioFrame):
            pcm = frame.to_ndarray().astype(np.float32).reshape(-1, len(frame.layout.channels))
            self.audio.data.append(pcm.mean(axis=1))
            self._add(self.audio, frame, now)
        elif self.keep_video:
            small = frame.reformat(width=VIDEO_SIZE[0], height=VIDEO_SIZE[1], format="rgb24")
            self.video.data.append(small.to_ndarray())
            self._add(self.video, frame, now)

    def _add(self, rec: TrackRecord, frame: av.AudioFrame | av.VideoFrame, now: float) -> None:
        rec.pts.append(int(frame.pts or 0))
        rec.arrival.append(now)
        if rec.origin is None:
            for receiver, r in self._receivers:
                if r is rec:
                    mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
                    rec.origin = getattr(mapper, "_origin", None)

    def audio_signal(self) -> tuple[float, FloatArray]:
        """The received audio as one signal: (wall time of its first sample, samples)."""
        times = self.audio.times()
        start = float(times[0])
        n = int(round((times[-1] - start) * SEND_RATE)) + len(self.audio.data[-1])
        out = np.zeros(n, np.float64)
        for t, pcm in zip(times, self.audio.data, strict=True):
            i = int(round((t - start) * SEND_RATE))
            out[i : i + len(pcm)] = pcm[: max(0, n - i)]
        return start, out


# --- the customer's microphone -------------------------------------------------------


def load_clip(path: Path, seconds: float | None = None) -> npt.NDArray[np.int16]:
    """A clip's audio as 48 kHz mono int16 (decoded in memory)."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SEND_RATE)
        parts = []
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
    pcm: npt.NDArray[np.int16] = np.concatenate(parts).astype(np.int16)
    return pcm[: round(seconds * SEND_RATE)] if seconds else pcm


def speech_onset(pcm: npt.NDArray[np.int16], rate: int = SEND_RATE) -> float:
    """Seconds to the first of three 10 ms windows in a row within 26 dB of the clip's
    loudest window: speech, not a lone click or lip smack before it."""
    hop = rate // 100
    n = len(pcm) // hop
    rms = np.sqrt(np.mean(pcm[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1))
    loud = rms >= rms.max() * 0.05
    run = loud[:-2] & loud[1:-1] & loud[2:]
    return float(np.argmax(run)) * hop / rate


class ClipAudioTrack(MediaStreamTrack):
    """A microphone that is silent until `play()`, then plays the clip once."""

    kind = "audio"

    def __init__(self, clip: npt.NDArray[np.int16]) -> None:
        super().__init__()
        self.clip = clip
        self.onset = speech_onset(clip)
        self.onset_sent: float | None = None  # time.time() the onset frame went out
        self._play_from: int | None = None
        self._t0: float | None = None
        self._index = 0

    def play(self) -> None:
        self._play_from = self._index + 1

    async def recv(self) -> av.AudioFrame:
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = self._t0 + self._index * SEND_FRAME / SEND_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        pcm = np.zeros(SEND_FRAME, np.int16)
        if self._play_from is not None:
            at = (self._index - self._play_from) * SEND_FRAME
            if 0 <= at < len(self.clip):
                chunk = self.clip[at : at + SEND_FRAME]
                pcm[: len(chunk)] = chunk
                onset = round(self.onset * SEND_RATE)
                if self.onset_sent is None and at <= onset < at + SEND_FRAME:
                    self.onset_sent = time.time() + (onset - at) / SEND_RATE
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SEND_RATE
        frame.pts = self._index * SEND_FRAME
        frame.time_base = fractions.Fraction(1, SEND_RATE)
        self._index += 1
        return frame

    @property
    def finished(self) -> bool:
        return self._play_from is not None and (
            (self._index - self._play_from) * SEND_FRAME >= len(self.clip)
        )


# --- analysis (pure) -----------------------------------------------------------------


def envelope(pcm: FloatArray, rate: int, times: FloatArray, window: float) -> FloatArray:
    """RMS of pcm in `window` seconds centred on each time (seconds from sample 0)."""
    csum = np.concatenate([[0.0], np.cumsum(pcm.astype(np.float64) ** 2)])
    half = window / 2
    lo = np.clip(np.round((times - half) * rate).astype(np.int64), 0, len(pcm))
    hi = np.clip(np.round((times + half) * rate).astype(np.int64), 0, len(pcm))
    width = np.maximum(hi - lo, 1)
    rms: FloatArray = np.sqrt((csum[hi] - csum[lo]) / width)
    return rms


def lipsync_offset(
    mouth_times: FloatArray,
    mouth: FloatArray,
    audio_start: float,
    audio: FloatArray,
    rate: int = SEND_RATE,
    max_lag: float = 0.3,
    step: float = 0.001,
) -> tuple[float, float]:
    """(offset in seconds, correlation) of the audio envelope against the mouth opening.

    For each lag L, the mouth opening at frame time t is correlated with the audio
    RMS over one frame interval centred on t + L; the best L is the offset, positive
    when the audio comes later than the mouth. Frames without a face are skipped.
    """
    ok = np.isfinite(mouth)
    t = mouth_times[ok] - audio_start
    m = mouth[ok] - mouth[ok].mean()
    frame = float(np.median(np.diff(mouth_times))) if len(mouth_times) > 1 else 1 / 30
    best, best_r = 0.0, -2.0
    for lag in np.arange(-max_lag, max_lag + step / 2, step):
        env = envelope(audio, rate, t + lag, frame)
        e = env - env.mean()
        denom = float(np.sqrt((m * m).sum() * (e * e).sum()))
        r = float((m * e).sum() / denom) if denom > 0 else 0.0
        if r > best_r:
            best, best_r = float(lag), r
    return best, best_r


def lip_gap(points: npt.NDArray[np.float32], width: int, height: int) -> float:
    """Inner-lip gap over face height from a face's normalised mesh landmarks (NaN for
    a degenerate face)."""
    p = points[:, :2].astype(np.float64) * np.array([width, height], np.float64)
    # 13/14: inner upper/lower lip; 10/152: forehead top and chin.
    face = float(np.linalg.norm(p[10] - p[152]))
    return float(np.linalg.norm(p[13] - p[14])) / face if face > 0 else float("nan")


class MouthMeter:
    """Inner-lip gap over face height of the largest face in each frame, in time order
    (the mesh tracks between frames); NaN without a face."""

    def __init__(self, static_image_mode: bool = False) -> None:
        self._faces = FaceAnalyzer(static_image_mode=static_image_mode, max_faces=1)

    def opening(self, rgb: npt.NDArray[np.uint8]) -> float:
        points = self._faces.detect(rgb)
        if points is None:
            return float("nan")
        return lip_gap(points, int(rgb.shape[1]), int(rgb.shape[0]))

    def close(self) -> None:
        self._faces.close()

    def __enter__(self) -> MouthMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def silent_from(
    times: FloatArray, frames: list[npt.NDArray[Any]], after: float, until: float,
    threshold: float = 300.0,
) -> float | None:
    """Time of the first frame after `after` from which the audio stays below
    `threshold` RMS up to `until`; None when it is still loud near `until` (so a
    pause between the avatar's words is not mistaken for it having stopped)."""
    last_loud: float | None = None
    for t, f in zip(times, frames, strict=True):
        if after <= t <= until and float(np.sqrt(np.mean(f.astype(np.float64) ** 2))) >= threshold:
            last_loud = float(t)
    if last_loud is None:
        return after
    later = [float(t) for t in times if t > last_loud]
    return later[0] if later and later[0] < until - 0.2 else None
