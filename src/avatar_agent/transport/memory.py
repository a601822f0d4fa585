"""A call carried in memory: the program that holds it is the customer.

`MemoryTransport` is a `CallTransport` without a network. The customer's frames are
pushed in (`push_audio`, `push_video`), the avatar's audio track is read out as a
peer would read it, paced by the call's own media clock, and every event the call sends
the customer is kept in `sent`, as the JSON the page would get. With a virtual clock
a whole call runs frame by frame, in-process and deterministically.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from avatar_agent.core.aio import TaskSet
from avatar_agent.core.events import Event, encode
from avatar_agent.transport.receiver import Receiver

# Frames the customer may push ahead of the call reading them; more is a test bug.
MAX_PUSHED = 256
KEEP_HEARD = 3000  # the avatar's last minute of audio frames, for a test to inspect


class MemoryTransport:
    def __init__(
        self,
        tracks: Sequence[MediaStreamTrack],
        *,
        on_connected: Callable[[], None],
    ) -> None:
        self._out = {t.kind: t for t in tracks}
        self._on_connected = on_connected
        self._tasks = TaskSet("memory")
        self._video: asyncio.Queue[av.VideoFrame | None] = asyncio.Queue(MAX_PUSHED)
        self._audio: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue(MAX_PUSHED)
        self.video_in: Receiver[Any] | None = Receiver("video", lambda: _next(self._video))
        self.audio_in: Receiver[Any] | None = Receiver("audio", lambda: _next(self._audio))
        self.sent: list[dict[str, Any]] = []  # what the customer's page got, in order
        # The avatar's audio frames as the customer heard them, the latest only.
        self.heard: collections.deque[av.AudioFrame] = collections.deque(maxlen=KEEP_HEARD)
        self._closed = False

    def connect(self) -> None:
        """Start media both ways, as a peer connecting would. The avatar's audio is read
        (speech events come from reading it); its video is not rendered, which only
        costs time: the WebRTC tests look at the frames."""
        for receiver in (self.video_in, self.audio_in):
            if receiver is not None:
                self._tasks.spawn(receiver.run(), f"receive-{receiver.kind}")
        if "audio" in self._out:
            self._tasks.spawn(self._read_audio(self._out["audio"]), "read-audio")
        self._on_connected()

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            self.heard.append(frame)

    def push_audio(self, frame: av.AudioFrame) -> None:
        self._audio.put_nowait(frame)

    def push_video(self, frame: av.VideoFrame) -> None:
        self._video.put_nowait(frame)

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == type_]

    def send_event(self, event: Event) -> None:
        if not self._closed:
            self.sent.append(encode(event, for_customer=True))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for q in (self._video, self._audio):
            while q.full():
                q.get_nowait()
            q.put_nowait(None)  # the receivers end as on a closed track
        for track in self._out.values():
            track.stop()
        await self._tasks.cancel_all()


async def _next(queue: asyncio.Queue[Any]) -> Any:
    item = await queue.get()
    if item is None:
        raise MediaStreamError
    return item
