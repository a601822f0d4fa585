"""What a session needs from a transport, whatever carries the media (WebRTC, LiveKit)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import av

from avatar_agent.transport.receiver import Receiver

EndCallback = Callable[[str], None]


class CallTransport(ABC):
    """One customer's connection.

    It plays the avatar stream out on one media clock, hands the customer's media to
    receivers (latest frame wins), carries JSON events to the customer, and reports
    when the connection is gone through `on_end(reason)`.
    """

    video_in: Receiver[av.VideoFrame] | None
    audio_in: Receiver[av.AudioFrame] | None

    @abstractmethod
    def send_event(self, message: dict[str, Any]) -> None:
        """Send one JSON event to the customer; never blocks, drops if it cannot send."""

    @abstractmethod
    def media_time(self) -> float:
        """Seconds on the call's media clock (0 before media starts)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop media and tear the connection down; idempotent."""
