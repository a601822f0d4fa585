"""What a session needs from a transport, whatever carries the media.

Two carry it today: `webrtc.WebRTCTransport` (a customer's browser) and
`memory.MemoryTransport` (a whole call in-process, for tests in virtual time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from avatar_agent.core.events import Event
from avatar_agent.transport.receiver import Receiver

EndCallback = Callable[[str], None]


class CallTransport(Protocol):
    """One customer's connection.

    It plays the avatar's tracks out, hands the customer's media to receivers
    (latest frame wins), carries events to the customer, and reports when the
    connection is gone through `on_end(reason)`.
    """

    video_in: Receiver[Any] | None
    audio_in: Receiver[Any] | None

    def send_event(self, event: Event) -> None:
        """Send one event to the customer; never blocks, drops if it cannot send."""

    async def close(self) -> None:
        """Stop media and tear the connection down; idempotent."""
