"""Turn-taking from voice activity alone: when to stop talking, when to answer.

The call has no speech recognition, so turns are inferred from the customer's
voice activity: speech starting while the avatar talks is a barge-in (the avatar
stops and listens); a turn of at least `min_turn_s` followed by `pause_s` of
silence earns a reply. A customer who starts again before the reply is due is
still talking, so the reply waits for the next end of turn.

The VAD needs 100+ ms to be sure of speech, so a sudden sound (an onset) while the
avatar talks first *holds* it; if the VAD confirms speech within `confirm_s` of
the hold it is a barge-in, otherwise the hold expires and the avatar resumes.

Pure: times are seconds on the call's media clock, passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["idle", "listening", "speaking"]


@dataclass
class TurnTaker:
    min_turn_s: float = 0.8
    pause_s: float = 0.4
    auto_reply: bool = True
    confirm_s: float = 0.4

    def __post_init__(self) -> None:
        self._turn_start: float | None = None
        self._reply_due: float | None = None
        self._hold_since: float | None = None

    @property
    def holding(self) -> bool:
        return self._hold_since is not None

    def onset(self, now: float, avatar_busy: bool) -> bool:
        """A sudden sound from the customer at `now`; True means hold the avatar. Not
        while already holding, nor mid-turn (the VAD has spoken: speech is known)."""
        if not avatar_busy or self._hold_since is not None or self._turn_start is not None:
            return False
        self._hold_since = now
        return True

    def hold_expired(self, now: float) -> bool:
        """True once, when a hold has gone `confirm_s` without speech: resume."""
        since = self._hold_since
        if since is None or now < since + self.confirm_s - 1e-9:
            return False
        self._hold_since = None
        return True

    @property
    def customer_speaking(self) -> bool:
        return self._turn_start is not None

    @property
    def reply_due(self) -> float | None:
        return self._reply_due

    def speech_start(self, t: float, avatar_busy: bool) -> bool:
        """The customer started talking at t; True means barge in (the avatar stops).
        A hold in progress is thereby confirmed: it ends in the barge-in."""
        self._hold_since = None
        self._turn_start = t
        self._reply_due = None  # the turn goes on: no answer mid-sentence
        return avatar_busy

    def speech_end(self, t: float) -> float | None:
        """The customer stopped at t; returns when a reply is due, or None for no reply."""
        start, self._turn_start = self._turn_start, None
        if start is None or not self.auto_reply or t - start < self.min_turn_s - 1e-9:
            return None
        self._reply_due = t + self.pause_s
        return self._reply_due

    def take_reply(self, now: float, avatar_busy: bool) -> bool:
        """Whether to start the reply now. A reply is given at most once; one that finds
        the avatar already talking (an operator took over meanwhile) is dropped."""
        due = self._reply_due
        if due is None or self._turn_start is not None or now < due - 1e-9:
            return False
        self._reply_due = None
        return not avatar_busy

    def state(self, avatar_busy: bool) -> State:
        if self._turn_start is not None:
            return "listening"
        return "speaking" if avatar_busy else "idle"
