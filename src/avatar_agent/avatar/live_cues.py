"""The avatar's body language during a call: affect + conversation → cue targets, live.

Runs for every call, with or without consent (without it the customer reads as
calm). Ten times a second it reads the customer's latest affect and who holds the
floor, asks the persona's rules for cue targets, hands them to the avatar stream
(whose animator smooths them into the pose of each video frame) and tells the
customer's page with a `cues` message. The persona file is watched and reloaded
while the call runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from avatar_agent.avatar.behavior import (
    AffectInput,
    CueTargets,
    PersonaWatcher,
    conversation_state,
    cue_targets,
)
from avatar_agent.avatar.stream import AvatarStream
from avatar_agent.core.clock import Clock, LoopClock, Ticker
from avatar_agent.core.events import Brow, CueUpdate, Gaze, Head, Mouth
from avatar_agent.core.faults import StageFaults

log = logging.getLogger(__name__)

CUES_HZ = 10.0
POLL_S = 0.5  # how often the persona file's stamp is checked


def cues_event(t: float, targets: CueTargets, state: str, affect: AffectInput,
               persona: str) -> CueUpdate:
    """The `cues` data-channel event (README: data channel), rounded for the wire."""
    return CueUpdate(
        t=round(t, 3),
        lean=round(targets.lean, 3),
        gaze=Gaze(round(targets.gaze_hold, 3), round(targets.saccade_rate, 3)),
        brow=Brow(round(targets.brow_raise, 3), round(targets.brow_frown, 3)),
        mouth=Mouth(round(targets.mouth_curve, 3)),
        head=Head(round(targets.head_tilt, 2), round(targets.nod, 3)),
        speech_rate=round(targets.speech_rate, 3),
        state=state,
        level=affect.level,
        persona=persona,
    )


class CallCues:
    def __init__(
        self,
        stream: AvatarStream,
        persona_path: Path,
        affect: Callable[[], Any | None],
        customer_speaking: Callable[[], bool],
        media_time: Callable[[], float],
        send: Callable[[CueUpdate], None],
        rate_hz: float = CUES_HZ,
        clock: Clock | None = None,
        pool: Executor | None = None,
        faults: StageFaults | None = None,
    ) -> None:
        self.stream = stream
        self._faults = faults or StageFaults("?")
        self.persona_path = persona_path
        self._affect = affect
        self._customer_speaking = customer_speaking
        self._media_time = media_time
        self._send = send
        self._period = 1.0 / rate_hz
        self._clock: Clock = clock or LoopClock()
        self._pool = pool  # persona file reads, off the event loop
        self.watcher: PersonaWatcher | None = None
        self._last_customer_speech: float | None = None

    def tick(self, now: float) -> CueUpdate:
        """One update at media time `now`: targets to the stream, the message returned."""
        assert self.watcher is not None
        if self._customer_speaking():
            self._last_customer_speech = now
        since = None if self._last_customer_speech is None else now - self._last_customer_speech
        heard = self.stream.playout.current_at(round(now * self.stream.rate))
        state = conversation_state(heard is not None,
                                   heard.utterance.layer if heard is not None else None,
                                   self._customer_speaking(), since)
        affect = AffectInput.of(self._affect())
        persona = self.watcher.persona
        targets = cue_targets(persona, affect, state)
        self.stream.set_targets(targets)
        return cues_event(now, targets, state, affect, persona.name)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Reading and validating YAML is file I/O: kept off the event loop.
        self.watcher = await loop.run_in_executor(self._pool, PersonaWatcher, self.persona_path)
        ticker = Ticker(self._clock, self._period)
        next_poll = self._clock.now() + POLL_S
        while True:
            if self._clock.now() >= next_poll:
                next_poll = self._clock.now() + POLL_S
                await loop.run_in_executor(self._pool, self.watcher.poll)
            try:
                self._send(self.tick(self._media_time()))
            except Exception as exc:
                # Cues are body language: a failure keeps the last pose, never ends the call.
                self._faults.failed("cues", exc)
            await ticker.tick()
