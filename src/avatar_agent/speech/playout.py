"""Speech placed on a call's audio timeline, read back by audio and video alike.

The timeline counts samples since the call's media clock started. The audio track
reads samples from it and the video track asks it for the mouth opening at a frame's
presentation time, so both follow one clock and lip-sync holds by construction.

Speech can be cut (barge-in: gone for good) or held (a sudden noise from the
customer: silent now, perhaps resumed). A held sentence is split where the audio
stopped: the part already played stays on the timeline and ends without an event,
the rest is parked with everything queued behind it and placed back on the
timeline by `resume`. Both parts index the same utterance and its mouth curve, so
resumed speech continues sample for sample and the mouth with it.
Pure: no clock, no I/O, no asyncio.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from avatar_agent.speech.lipsync import MouthTimeline
from avatar_agent.speech.types import Utterance

# How long a sentence read to its end still shapes the mouth: frames are drawn at most
# this far behind the audio (later ones are skipped, not sent).
HEARD_KEPT_S = 1.0


@dataclass
class Scheduled:
    utterance: Utterance
    start: int  # first sample on the call's timeline
    mouth: MouthTimeline = field(repr=False)
    started: bool = False
    # The slice [first, last) of the utterance's samples placed at `start`: all of it,
    # unless a hold split the sentence.
    first: int = 0
    last: int = -1
    quiet_end: bool = False  # the part played before a hold: its sentence goes on later

    def __post_init__(self) -> None:
        if self.last < 0:
            self.last = len(self.utterance.pcm)

    @property
    def end(self) -> int:
        return self.start + self.last - self.first

    def pcm(self, lo: int, hi: int) -> npt.NDArray[np.int16]:
        """Samples for timeline positions [lo, hi) inside this item."""
        off = self.first - self.start
        return self.utterance.pcm[lo + off : hi + off]

    def mouth_at(self, sample: int, rate: int) -> float:
        return self.mouth.opening_at((sample - self.start + self.first) / rate)


@dataclass(frozen=True, slots=True)
class PlayoutEvent:
    event: Literal["start", "end"]
    text: str
    sample: int  # where on the timeline it happens
    interrupted: bool = False  # an end cut short by barge-in


class Playout:
    def __init__(self, rate: int = 48000) -> None:
        self.rate = rate
        self._queue: list[Scheduled] = []
        self._held: list[Scheduled] | None = None  # parked speech while held
        self._held_at = 0
        self._read_to = 0  # end of the last read: samples before it are gone out
        # Utterances read to their end, for the mouth: the audio track reads ahead of
        # the frame being drawn (by the render's latency, more on a busy server), and a
        # sentence's last syllables must not be drawn with the mouth already shut.
        self._heard: deque[Scheduled] = deque()

    @property
    def pending(self) -> int:
        """Utterances still to be heard, parked ones included (the played part of a
        held sentence is not one: its rest is parked)."""
        playing = sum(1 for item in self._queue if not item.quiet_end)
        return playing + len(self._held or [])

    @property
    def held(self) -> bool:
        return self._held is not None

    def enqueue(self, utt: Utterance, not_before: int) -> Scheduled:
        """Place utt after everything queued, and not before sample `not_before`; while
        held it is parked behind the held speech and placed when that resumes."""
        if utt.sample_rate != self.rate:
            raise ValueError(f"utterance at {utt.sample_rate} Hz, playout at {self.rate} Hz")
        item = Scheduled(utt, not_before, MouthTimeline(utt.phonemes, utt.duration))
        if self._held is not None:
            self._held.append(item)
            return item
        item.start = max(not_before, self._queue[-1].end if self._queue else not_before)
        self._queue.append(item)
        return item

    def read(self, start: int, n: int) -> tuple[npt.NDArray[np.int16], list[PlayoutEvent]]:
        """Samples [start, start+n) of the timeline, and the speech events inside them."""
        out = np.zeros(n, dtype=np.int16)
        events: list[PlayoutEvent] = []
        stop = start + n
        self._read_to = max(self._read_to, stop)
        keep: list[Scheduled] = []
        for item in self._queue:
            text = item.utterance.text
            if item.start < stop and item.end > start:
                lo, hi = max(start, item.start), min(stop, item.end)
                out[lo - start : hi - start] = item.pcm(lo, hi)
                if not item.started:
                    item.started = True
                    events.append(PlayoutEvent("start", text, max(item.start, start)))
            if item.end <= stop:
                if not item.started:  # skipped over entirely, e.g. after a stall
                    events.append(PlayoutEvent("start", text, item.start))
                if not item.quiet_end:
                    events.append(PlayoutEvent("end", text, item.end))
                self._heard.append(item)
                continue
            keep.append(item)
        self._queue = keep
        while self._heard and self._heard[0].end < stop - round(HEARD_KEPT_S * self.rate):
            self._heard.popleft()
        return out, events

    def mouth_at(self, sample: int) -> float:
        for item in itertools.chain(self._queue, self._heard):
            if item.start <= sample < item.end:
                return item.mouth_at(sample, self.rate)
        return 0.0

    def current_at(self, sample: int) -> Scheduled | None:
        """The utterance heard at `sample`, or None in silence."""
        for item in self._queue:
            if item.start <= sample < item.end:
                return item
        return None

    def hold(self, at: int) -> int:
        """Go silent at sample `at` (or where the audio has been read to, if later:
        what went out cannot be taken back) without losing anything: the rest of the
        sentence being spoken and everything queued is parked for `resume`. Returns
        the sample the speech stopped at. Holding while held changes nothing.
        """
        if self._held is not None:
            return self._held_at
        h = max(at, self._read_to)
        keep: list[Scheduled] = []
        parked: list[Scheduled] = []
        for item in self._queue:
            if item.end <= h:
                keep.append(item)
            elif item.start >= h:
                parked.append(item)
            else:  # split where the audio stops; the sentence has begun either way
                split = item.first + (h - item.start)
                keep.append(replace(item, last=split, quiet_end=True))
                parked.append(replace(item, first=split, started=True, quiet_end=False))
        self._queue = keep
        self._held, self._held_at = parked, h
        return h

    def resume(self, at: int) -> int:
        """Play the parked speech again from sample `at` (or later, behind whatever
        is still on the timeline), back to back. A sentence that had begun gets no
        second start event. Returns where it resumes; does nothing when not held."""
        parked, self._held = self._held, None
        first = max(at, self._read_to, self._queue[-1].end if self._queue else at)
        start = first
        for item in parked or []:
            item.start = start
            self._queue.append(item)
            start = item.end
        return first

    def cut(self, at: int) -> list[PlayoutEvent]:
        """Stop speaking at sample `at` (barge-in): from there on the timeline is silent
        and the mouth closed, and parked speech is dropped. Speech that has finished
        before `at` still ends normally.

        Returns an interrupted `end` event for each utterance already heard; queued
        ones never started, so they end silently.
        """
        events: list[PlayoutEvent] = []
        keep: list[Scheduled] = []
        for item in self._queue:
            if item.end <= at:
                keep.append(item)
            elif item.started and not item.quiet_end:
                events.append(PlayoutEvent("end", item.utterance.text, max(at, item.start), True))
        for item in self._held or []:
            if item.started:  # it stopped when the hold began
                events.append(PlayoutEvent("end", item.utterance.text, min(at, self._held_at),
                                          True))
        self._queue, self._held = keep, None
        return events
