"""Analysis gives way when the avatar's own media falls behind.

Outgoing video that skips frames means the machine is short of CPU; face analysis
is the part of a call that can wait, so it pauses for a moment and lets the media
catch up. Pure: fed a time and a running count of skipped outgoing frames.
"""

from __future__ import annotations


class LoadShedder:
    def __init__(self, hold_s: float = 1.0) -> None:
        if hold_s <= 0:
            raise ValueError("hold_s must be positive")
        self.hold_s = hold_s
        self._last_skips: int | None = None
        self._paused_until = float("-inf")
        self.shed = 0

    def allow(self, t: float, media_skips: int) -> bool:
        """True when analysis may run at time t; `media_skips` only ever grows."""
        if self._last_skips is not None and media_skips > self._last_skips:
            self._paused_until = t + self.hold_s
        self._last_skips = media_skips
        if t < self._paused_until:
            self.shed += 1
            return False
        return True
