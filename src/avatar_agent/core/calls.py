"""What the operators see of a live call and of the server that runs calls.

Operators sit above the call machinery but must not depend on how a call is put
together (`session`) nor on what the server loads (`runtime`): they read and drive
calls through these protocols only. `session.CallSession` and `runtime.Runtime`
satisfy them as they are (structurally); a test can hand the operators small fakes.

Everything here is read-only from the operators' side (properties), except the few
things an operator may do to a call: speak through the avatar and end it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, TypeAlias

from avatar_agent.core.bus import EventBus
from avatar_agent.core.config import Config
from avatar_agent.core.events import AffectUpdate
from avatar_agent.core.store import AsyncStore


class FrameSlot(Protocol):
    """One viewer's slot on the customer's camera: it holds the newest frame only."""

    def put(self, item: Any) -> bool: ...

    def take(self) -> Any:
        """The newest frame not yet taken (a PyAV video frame), or None."""


class CameraFeed(Protocol):
    """The customer's camera as the call receives it (latest frame wins)."""

    @property
    def ended(self) -> bool: ...

    def subscribe(self, *, sampled: bool = False) -> FrameSlot:
        """A slot of one's own; `sampled`: skipping frames on purpose is no drop."""

    def unsubscribe(self, sink: FrameSlot) -> None: ...

    async def arrival(self) -> None:
        """Wait for the next frame (returns at once after the camera ended)."""


class CustomerMedia(Protocol):
    """The customer's connection, as far as an operator may see it: the camera."""

    @property
    def video_in(self) -> CameraFeed | None: ...


class LiveAffect(Protocol):
    """A consenting call's affect: the latest reading and what the store lacks yet.

    The call writes its curve and timeline events to the store in batches (about
    every 2 s); `curve` and `events` are what it has not written yet, in the stored
    form (`AffectUpdate.point()`, `core.events.timeline_entry`).
    """

    @property
    def last_update(self) -> AffectUpdate | None: ...

    @property
    def curve(self) -> Sequence[dict[str, Any]]: ...

    @property
    def events(self) -> Sequence[dict[str, Any]]: ...


class LiveCall(Protocol):
    """One call in progress, as operators see and drive it."""

    @property
    def call_id(self) -> str: ...

    @property
    def consent_analysis(self) -> bool: ...

    @property
    def started_at(self) -> float:
        """Wall-clock time the call began (for the call list)."""

    @property
    def end_reason(self) -> str | None:
        """None while the call runs."""

    @property
    def affect(self) -> LiveAffect | None:
        """None without consent, or while the server runs without an affect model."""

    @property
    def transport(self) -> CustomerMedia | None:
        """None until the customer's connection is up."""

    def media_time(self) -> float:
        """Seconds on the call's media clock: the `t` of everything the call reports."""

    def say(self, text: str) -> None:
        """Have the avatar say `text` after what it has queued."""

    async def close(self, reason: str) -> None:
        """End the call (idempotent)."""


LiveCalls: TypeAlias = Mapping[str, LiveCall]
"""The calls in progress by id, as the app keeps them."""


class CallServices(Protocol):
    """What operators use of the server's shared runtime."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> AsyncStore: ...

    @property
    def events(self) -> EventBus:
        """The in-process bus every call publishes its events on."""

    @property
    def render_pool(self) -> Executor:
        """Short CPU work (plots) off the event loop."""

    @property
    def analysis_pool(self) -> Executor:
        """Work on the customer's media (the camera's JPEG frames) off the event loop."""
