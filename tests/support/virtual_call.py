"""A whole call in-process and in virtual time: the real session, a memory transport.

`CallHarness` builds one server runtime (real store, Piper voice, affect model or
script, face and speech networks) whose pools run work inline, so a call's analysis
takes no virtual time. `VirtualCall` is one customer: the test pushes real audio and
video frames and the clock moves 20 ms per audio frame, so every loop of the call
(perception, affect, cues, speech, the avatar's tracks) runs exactly as in a server,
in deadline order, and nothing waits on a wall clock.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from avatar_agent.affect.script import AffectScript
from avatar_agent.avatar.render import default_avatar_dir
from avatar_agent.core.aio import InlineExecutor
from avatar_agent.core.bus import Subscription
from avatar_agent.core.clock import VirtualClock
from avatar_agent.core.config import Config
from avatar_agent.core.events import Event
from avatar_agent.core.store import AsyncStore, Store
from avatar_agent.operators.watcher import EscalationWatcher
from avatar_agent.perception.audio import load_audio
from avatar_agent.runtime import Runtime, load_predictor, load_understanding
from avatar_agent.session import CallSession
from avatar_agent.speech.tts import PiperTTS
from avatar_agent.transport.memory import MemoryTransport

IN_RATE = 48_000
FRAME = 960  # 20 ms, as WebRTC delivers it
FRAME_S = FRAME / IN_RATE


async def start_runtime(
    config: Config, db: Path, *, model: bool = True, affect_script: AffectScript | None = None,
    understanding: bool = False,
) -> Runtime:
    """A server's shared parts, with every pool inline (see core.aio.InlineExecutor).

    With `affect_script` a consenting call's affect comes from the script instead of the
    model, as with `affect.script` in a server's config (the model is then not loaded).
    """
    inline = InlineExecutor()
    # The shared batcher waits max_wait_ms of real time for other calls' windows; with
    # one call in virtual time that wait would only land a result frames late.
    config = config.model_copy(
        update={"affect": config.affect.model_copy(update={"max_wait_ms": 0.0})})
    load = model and affect_script is None
    predictor, encoder, expression = load_predictor(config) if load else (None, None, None)
    # Speech recognition and the knowledge base, as a server loads them (`understanding`).
    transcriber, answerer = load_understanding(config) if understanding else (None, None)
    rt = Runtime(
        config,
        AsyncStore(Store(f"sqlite:///{db}"), executor=inline),
        PiperTTS(speed=config.tts.speed),
        default_avatar_dir().parent / config.avatar.name,
        predictor=predictor,
        affect_script=affect_script,
        speech_encoder=encoder,
        face_expression=expression,
        pool=inline,
        transcriber=transcriber,
        answerer=answerer,
    )
    await rt.ready()
    return rt


def speech_pcm(paths: list[Path], gap_s: float = 0.8) -> npt.NDArray[np.int16]:
    """Clips one after another with pauses between turns, as 48 kHz mono int16."""
    parts = []
    for p in paths:
        samples, _ = load_audio(p)
        parts += [samples, np.zeros(round(gap_s * 16_000), np.float32)]
    pcm = resample_poly(np.concatenate(parts), 3, 1)
    return np.asarray(np.clip(pcm * 32767, -32768, 32767), dtype=np.int16)


@dataclass
class VirtualCall:
    """One customer of `rt`, on a memory transport, driven frame by frame."""

    rt: Runtime
    consent: bool
    clock: VirtualClock = field(default_factory=VirtualClock)
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seen: list[Event] = field(default_factory=list)  # bus events read so far

    async def start(self, *, escalations: bool = False) -> None:
        self.bus: Subscription = self.rt.events.subscribe(maxsize=100_000)
        self.watcher_task: asyncio.Task[None] | None = None
        if escalations:
            watcher = EscalationWatcher(self.rt.config.escalation, self.rt.events, self.rt.store)
            self.watcher_task = asyncio.create_task(watcher.run())
        self.session = CallSession(self.call_id, self.consent, self.rt,
                                   on_closed=lambda _s: None, clock=self.clock)
        tracks = await self.session.prepare()
        self.transport = MemoryTransport(
            tracks, on_connected=self.session.connected)
        await self.session.attach(self.transport)
        self.transport.connect()
        self._t = 0  # audio frames pushed
        self._video_next = 0.0

    @property
    def t(self) -> float:
        return self._t * FRAME_S

    async def play(
        self,
        pcm: npt.NDArray[np.int16] | None = None,
        seconds: float | None = None,
        video: list[npt.NDArray[np.uint8]] | None = None,
        fps: float = 15.0,
    ) -> None:
        """Send `pcm` (48 kHz mono; silence when None) for its length or `seconds`, and
        `video` frames (looped) at `fps`, advancing the clock 20 ms per audio frame."""
        n = round((seconds if seconds is not None else len(pcm) / IN_RATE) / FRAME_S)
        k = 0
        for i in range(n):
            chunk = np.zeros(FRAME, np.int16)
            if pcm is not None and (i + 1) * FRAME <= len(pcm):
                chunk = pcm[i * FRAME : (i + 1) * FRAME]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            frame.sample_rate = IN_RATE
            frame.pts = self._t * FRAME
            self.transport.push_audio(frame)
            if video is not None and self.t >= self._video_next:
                self.transport.push_video(
                    av.VideoFrame.from_ndarray(video[k % len(video)], format="rgb24"))
                k += 1
                self._video_next += 1.0 / fps
            self._t += 1
            await self.clock.advance(FRAME_S)

    def published(self) -> list[Event]:
        """Everything the bus has carried since the call started."""
        while (ev := self.bus.get_nowait()) is not None:
            self.seen.append(ev)
        return list(self.seen)

    async def hang_up(self) -> None:
        await self.session.close("customer_left")
        if self.watcher_task is not None:
            self.watcher_task.cancel()
            await asyncio.gather(self.watcher_task, return_exceptions=True)
        self.bus.close()
