"""Measurements of a live call from the customer's side: lip-sync, first audio, barge-in.

Used by `scripts/measure_lipsync.py` and the integration tests. Each function joins
the server as a real aiortc customer (`CustomerClient`) and keeps media in memory.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import numpy as np
import numpy.typing as npt

from avatar_agent.testing.client import CustomerClient
from avatar_agent.testing.measure import (
    SEND_RATE,
    ClipAudioTrack,
    MediaRecorder,
    MouthMeter,
    lipsync_offset,
    silent_from,
)

AUDIBLE = 300.0  # RMS (int16 scale) above which a received audio frame has speech


@dataclass
class LipsyncResult:
    offset_ms: float  # positive: audio later than the mouth
    correlation: float
    frames: int
    face_frames: int
    first_audio_ms: float  # call connected -> first audible avatar audio received
    sender_reports: tuple[int, int]  # (audio, video) reports the alignment used


@dataclass
class BargeInResult:
    latency_ms: float | None  # customer speech onset sent -> avatar audio silent (received)
    sender_ms: float | None  # the same, to the silence leaving the server (sender reports)
    interrupted: bool  # a `speech` end with interrupted came
    event_ms: float | None  # onset sent -> the interrupted end event received
    reply_ms: float | None  # customer speech end sent -> first audible reply audio


async def _connected(client: CustomerClient, within: float = 15.0) -> float:
    ok = await client.wait_for(lambda: client.pc.connectionState == "connected", within)
    if not ok:
        raise RuntimeError("the call did not connect")
    return time.time()


async def measure_lipsync(url: str, seconds: float = 8.0) -> LipsyncResult:
    """Join a call, record `seconds` of the avatar talking (its greeting), and measure."""
    recorder = MediaRecorder()
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(url, None, consent=False, recorder=recorder)
        try:
            await client.connect(http)
            connected = await _connected(client)
            await asyncio.sleep(seconds)
            await client.hangup(http)
        finally:
            await client.close()
    return await asyncio.get_running_loop().run_in_executor(
        None, analyse_lipsync, recorder, connected
    )


def analyse_lipsync(recorder: MediaRecorder, connected: float) -> LipsyncResult:
    """Mouth opening on every received frame against the received audio envelope."""
    meter = MouthMeter()
    try:
        mouth = np.array([meter.opening(f) for f in recorder.video.data])
    finally:
        meter.close()
    audio_start, audio = recorder.audio_signal()
    offset, r = lipsync_offset(recorder.video.times(), mouth, audio_start, audio)
    arrival = np.asarray(recorder.audio.arrival)
    loud = [i for i, f in enumerate(recorder.audio.data) if _rms(f) > AUDIBLE]
    first = float(arrival[loud[0]] - connected) * 1000 if loud else float("nan")
    return LipsyncResult(
        offset * 1000, r, len(mouth), int(np.isfinite(mouth).sum()), first,
        (len(recorder.audio.reports), len(recorder.video.reports)),
    )


def _rms(pcm: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


async def measure_barge_in(
    url: str, clip: npt.NDArray[np.int16], talk_after: float = 1.5, consent: bool = False
) -> BargeInResult:
    """Start talking (a real speech clip) `talk_after` s into the avatar's greeting."""
    recorder = MediaRecorder(keep_video=False)
    mic = ClipAudioTrack(clip)
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(
            url, None, send_video=False, consent=consent, audio_track=mic, recorder=recorder
        )
        try:
            await client.connect(http)
            await _connected(client)
            if not await client.wait_for(lambda: client.rx.speech("start"), 10):
                raise RuntimeError("the avatar never started talking")
            await asyncio.sleep(talk_after)
            mic.play()
            await client.wait_for(lambda: mic.finished, len(clip) / SEND_RATE + 5)
            await asyncio.sleep(4.0)  # the reply to the turn
            await client.hangup(http)
        finally:
            await client.close()
    onset = mic.onset_sent
    if onset is None:
        raise RuntimeError("the clip's speech onset was never sent")
    times = np.asarray(recorder.audio.arrival)
    clip_end = onset + _speech_end(clip) - mic.onset
    silent = silent_from(times, recorder.audio.data, onset, clip_end, threshold=AUDIBLE)
    # the same on the sender's clock (RTCP sender reports): without our jitter buffer
    sent = silent_from(recorder.audio.times(), recorder.audio.data, onset, clip_end, AUDIBLE)
    ends = [e for e in client.rx.events if e.get("type") == "speech" and e.get("interrupted")]
    event_ms = (ends[0]["_received"] - time.monotonic() + time.time() - onset) * 1000 if ends \
        else None
    reply = [t for t, f in zip(times, recorder.audio.data, strict=True)
             if t > clip_end and _rms(f) > AUDIBLE]
    return BargeInResult(
        (silent - onset) * 1000 if silent is not None else None,
        (sent - onset) * 1000 if sent is not None else None,
        bool(ends),
        event_ms,
        (reply[0] - clip_end) * 1000 if reply else None,
    )


def _speech_end(pcm: npt.NDArray[np.int16]) -> float:
    """Seconds to the end of the clip's last loud 10 ms window."""
    hop = SEND_RATE // 100
    n = len(pcm) // hop
    rms = np.sqrt(np.mean(pcm[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1))
    loud = np.nonzero(rms >= rms.max() * 0.05)[0]
    return float(loud[-1] + 1) * hop / SEND_RATE if len(loud) else 0.0


def reference_offset(text: str) -> float:
    """The offset the same analysis finds between the lip-sync curve and the audio it
    was made for, with no network or rendering: the method's own bias, in ms."""
    from avatar_agent.speech.lipsync import MouthTimeline
    from avatar_agent.speech.tts import PiperTTS

    utts = PiperTTS().synthesize(text)
    pcm = np.concatenate([u.pcm for u in utts]).astype(np.float64)
    mouth, times = [], []
    t0 = 0.0
    for u in utts:
        tl = MouthTimeline(u.phonemes, u.duration)
        for t in np.arange(0.0, u.duration, 1 / 30):
            mouth.append(tl.opening_at(float(t)))
            times.append(t0 + float(t))
        t0 += u.duration
    offset, _ = lipsync_offset(np.asarray(times), np.asarray(mouth), 0.0, pcm)
    return offset * 1000
