"""Frame pacing on a media clock: which frame is due, how long to wait, what to skip.

Pure arithmetic so it can be tested frame by frame; the tracks supply the elapsed time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pace:
    index: int  # frame to produce now (its presentation time is index * period)
    wait: float  # seconds to sleep before producing it
    skipped: int  # frames given up because their time has passed


def pace(elapsed: float, next_index: int, period: float, max_late_frames: int) -> Pace:
    """Decide the next frame on a clock that has run `elapsed` seconds.

    A frame that is at most `max_late_frames` periods late is still produced, so a
    momentary hiccup does not cost a frame (audio wants this: gaps click). Later than
    that, the stale frames are skipped and the newest due frame is produced, so a
    slow consumer never builds up delay: the latest frame wins.
    """
    if period <= 0:
        raise ValueError("period must be positive")
    due = next_index * period
    if elapsed < due:
        return Pace(next_index, due - elapsed, 0)
    behind = int((elapsed - due) / period)
    if behind <= max_late_frames:
        return Pace(next_index, 0.0, 0)
    return Pace(next_index + behind, 0.0, behind)
