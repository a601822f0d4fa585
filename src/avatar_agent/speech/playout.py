"""Speech placed on a call's audio timeline, read back by audio and video alike.

The timeline counts samples since the call's media clock started. The audio track
reads samples from it and the video track asks it for the mouth opening at a frame's
presentation time, so both follow one clock and lip-sync holds by construction.
Pure: no clock, no I/O, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from avatar_agent.avatar.lipsync import MouthTimeline
from avatar_agent.speech.types import Utterance


@dataclass
class Scheduled:
    utterance: Utterance
    start: int  # first sample on the call's timeline
    mouth: MouthTimeline = field(repr=False)
    started: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.utterance.pcm)


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    event: Literal["start", "end"]
    text: str
    sample: int  # where on the timeline it happens


class Playout:
    def __init__(self, rate: int = 48000) -> None:
        self.rate = rate
        self._queue: list[Scheduled] = []

    @property
    def pending(self) -> int:
        return len(self._queue)

    def enqueue(self, utt: Utterance, not_before: int) -> Scheduled:
        """Place utt after everything queued, and not before sample `not_before`."""
        if utt.sample_rate != self.rate:
            raise ValueError(f"utterance at {utt.sample_rate} Hz, playout at {self.rate} Hz")
        start = max(not_before, self._queue[-1].end if self._queue else not_before)
        item = Scheduled(utt, start, MouthTimeline(utt.phonemes, utt.duration))
        self._queue.append(item)
        return item

    def read(self, start: int, n: int) -> tuple[npt.NDArray[np.int16], list[SpeechEvent]]:
        """Samples [start, start+n) of the timeline, and the speech events inside them."""
        out = np.zeros(n, dtype=np.int16)
        events: list[SpeechEvent] = []
        stop = start + n
        keep: list[Scheduled] = []
        for item in self._queue:
            text = item.utterance.text
            if item.start < stop and item.end > start:
                lo, hi = max(start, item.start), min(stop, item.end)
                out[lo - start : hi - start] = item.utterance.pcm[lo - item.start : hi - item.start]
                if not item.started:
                    item.started = True
                    events.append(SpeechEvent("start", text, max(item.start, start)))
            if item.end <= stop:
                if not item.started:  # skipped over entirely, e.g. after a stall
                    events.append(SpeechEvent("start", text, item.start))
                events.append(SpeechEvent("end", text, item.end))
                continue
            keep.append(item)
        self._queue = keep
        return out, events

    def mouth_at(self, sample: int) -> float:
        for item in self._queue:
            if item.start <= sample < item.end:
                return item.mouth.opening_at((sample - item.start) / self.rate)
        return 0.0

    def current_at(self, sample: int) -> Scheduled | None:
        """The utterance heard at `sample`, or None in silence."""
        for item in self._queue:
            if item.start <= sample < item.end:
                return item
        return None

    def speaking_at(self, sample: int) -> bool:
        return self.current_at(sample) is not None

    def clear(self) -> list[Scheduled]:
        """Drop all queued speech (barge-in); returns what was dropped."""
        dropped, self._queue = self._queue, []
        return dropped
