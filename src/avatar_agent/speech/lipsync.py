"""Phoneme timings → a smooth jaw-opening curve for the avatar's mouth.

Each phoneme gets a jaw-opening target; targets sit at phoneme centres and the
curve between them is interpolated, so neighbouring sounds blend into each other
(co-articulation). The jaw has a finite speed, so the curve is also limited to
``MAX_SPEED`` opening units per second; fast syllables therefore under-shoot
their vowels, as real speakers do. Bilabials (p, b, m) and real pauses keep an
exact closure through their middle: the speed limit only ever lowers the curve.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from avatar_agent.speech.types import PhonemeSpan

# Jaw opening per IPA base symbol, as espeak-ng (and so Piper) writes English and
# its neighbours. Values are relative jaw drop, tuned by eye on the avatar.
_OPENING: dict[str, float] = {
    # open vowels
    "a": 0.95, "ɑ": 1.0, "æ": 0.85, "ɐ": 0.75, "ɒ": 0.85, "ʌ": 0.7, "ɔ": 0.7, "ɶ": 0.85,
    # mid vowels
    "e": 0.5, "ɛ": 0.6, "ə": 0.45, "ɜ": 0.5, "ɚ": 0.4, "ɝ": 0.4, "o": 0.5, "ø": 0.45,
    "œ": 0.55, "ɤ": 0.45, "ɘ": 0.4, "ɵ": 0.4, "ɞ": 0.55,
    # close vowels
    "i": 0.28, "ɪ": 0.35, "y": 0.25, "ʏ": 0.3, "u": 0.28, "ʊ": 0.35, "ɯ": 0.28, "ɨ": 0.3,
    "ʉ": 0.28, "ᵻ": 0.32,
    # bilabials close the lips completely
    "p": 0.0, "b": 0.0, "m": 0.0, "ɸ": 0.05, "β": 0.05, "ʙ": 0.0,
    # labiodentals: lower lip to the upper teeth
    "f": 0.1, "v": 0.1, "ɱ": 0.05, "ʋ": 0.15,
    # dentals, alveolars, postalveolars
    "θ": 0.2, "ð": 0.2, "t": 0.25, "d": 0.25, "n": 0.22, "l": 0.3, "ɫ": 0.3, "ɬ": 0.25,
    "s": 0.15, "z": 0.15, "ʃ": 0.2, "ʒ": 0.2, "ɹ": 0.3, "r": 0.3, "ɾ": 0.25, "ɻ": 0.3,
    "ʂ": 0.18, "ʐ": 0.18, "ɕ": 0.18, "ʑ": 0.18, "c": 0.25, "ɟ": 0.25,
    # velars, palatals, glottals
    "k": 0.3, "ɡ": 0.3, "g": 0.3, "ŋ": 0.28, "x": 0.3, "ɣ": 0.3, "j": 0.25, "ç": 0.25,
    "ʎ": 0.28, "ɲ": 0.25, "w": 0.15, "ʍ": 0.15, "ɥ": 0.15, "h": 0.4, "ɦ": 0.4, "ʔ": 0.2,
    "q": 0.3, "ɢ": 0.3, "χ": 0.3, "ʁ": 0.3, "ʀ": 0.3, "ħ": 0.35, "ʕ": 0.35,
}

# Marks that modify the neighbouring sound rather than being one: stress, length,
# tie bars and superscript modifiers.
_MODIFIERS = frozenset("ˈˌːˑ‿͜͡ʰʲʷˠˤⁿˡ̃ˀ-")
_UNKNOWN_LETTER = 0.3  # a letter we have no entry for is still a sound
# A pause symbol shorter than this is a word boundary, not a breath: the jaw
# carries on between the words instead of snapping shut.
MIN_PAUSE = 0.09
MAX_SPEED = 9.0  # opening units per second; ~110 ms from closed to wide open
_GRID_HZ = 400.0  # resolution of the precomputed curve


def _is_modifier(ch: str) -> bool:
    return ch in _MODIFIERS or bool(unicodedata.combining(ch)) or unicodedata.category(ch) == "Lm"


def _segments(phoneme: str) -> list[str]:
    """The sounding symbols of a phoneme string, without stress, length or diacritics."""
    out: list[str] = []
    for ch in phoneme:
        if _is_modifier(ch):
            continue
        if ch in _OPENING or unicodedata.category(ch).startswith("L"):
            out.append(ch)
    return out


def _symbol_opening(symbol: str) -> float:
    return _OPENING.get(symbol, _UNKNOWN_LETTER)


def phoneme_opening(phoneme: str) -> float:
    """Jaw-opening target (0..1) of one phoneme; 0 for pauses and punctuation."""
    segments = _segments(phoneme)
    if not segments:
        return 0.0
    return max(_symbol_opening(s) for s in segments)


def _is_pause(phoneme: str) -> bool:
    """Silence, word gap, BOS/EOS or punctuation: anything with no letter in it."""
    stripped = phoneme.strip()
    if not stripped:
        return True
    return all(not _is_modifier(ch) and not _segments(ch) for ch in stripped)


def _keyframes(phonemes: Sequence[PhonemeSpan], duration: float) -> list[tuple[float, float]]:
    keys: list[tuple[float, float]] = [(0.0, 0.0)]
    for span in phonemes:
        start = max(0.0, min(duration, span.start))
        end = max(start, min(duration, span.end))
        length = end - start
        if _is_pause(span.phoneme):
            if length >= MIN_PAUSE:
                # Hold the mouth shut through the middle of a real pause.
                keys.append((start + 0.3 * length, 0.0))
                keys.append((start + 0.7 * length, 0.0))
            continue
        segments = _segments(span.phoneme)
        if not segments:
            continue  # a bare stress or length mark: it only shapes its neighbours
        # Diphthongs and affricates glide: one target per part across the span.
        step = length / len(segments)
        for i, symbol in enumerate(segments):
            target = _symbol_opening(symbol)
            if target == 0.0 and length > 0.0:
                # Lips must visibly meet, so the closure spans the middle of the sound.
                keys.append((start + step * (i + 0.3), 0.0))
                keys.append((start + step * (i + 0.7), 0.0))
            else:
                keys.append((start + step * (i + 0.5), target))
    keys.append((duration, 0.0))
    keys.sort(key=lambda k: k[0])
    return keys


class MouthTimeline:
    """Jaw opening over one utterance; ``opening_at`` is cheap enough to call per frame."""

    def __init__(self, phonemes: Sequence[PhonemeSpan], duration: float) -> None:
        if not math.isfinite(duration) or duration < 0.0:
            raise ValueError(f"duration must be a finite number >= 0, got {duration!r}")
        self.duration = float(duration)
        keys = _keyframes(phonemes, self.duration)
        key_t = np.array([k[0] for k in keys], dtype=np.float64)
        key_v = np.array([k[1] for k in keys], dtype=np.float64)
        n = max(2, int(math.ceil(self.duration * _GRID_HZ)) + 1)
        self._grid = np.linspace(0.0, self.duration, n)
        linear = np.interp(self._grid, key_t, key_v)
        # The largest speed-limited curve that never exceeds the interpolation:
        # min over s of linear(s) + MAX_SPEED * |t - s|, in two running minima.
        slope = MAX_SPEED * self._grid
        ahead = np.minimum.accumulate(linear - slope) + slope
        behind = (np.minimum.accumulate((linear + slope)[::-1]) - slope[::-1])[::-1]
        limited = np.minimum(ahead, behind)
        # A short moving average rounds the peaks; it keeps the speed bound, and
        # taking the lower of the two again restores exact closures.
        width = max(1, int(round(0.035 * _GRID_HZ)))
        curve = limited
        if width > 1 and n > width:
            kernel = np.ones(width) / width
            padded = np.pad(limited, (width // 2, width - 1 - width // 2), mode="edge")
            curve = np.minimum(np.convolve(padded, kernel, mode="valid"), limited)
        self._curve = np.clip(curve, 0.0, 1.0)

    def opening_at(self, t: float) -> float:
        """Jaw opening at ``t`` seconds from the utterance start; 0 outside it."""
        if not 0.0 <= t <= self.duration:
            return 0.0
        return float(np.interp(t, self._grid, self._curve))

    def sample(self, times: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``opening_at`` for many times at once."""
        inside = (times >= 0.0) & (times <= self.duration)
        return np.where(inside, np.interp(times, self._grid, self._curve), 0.0)


def mouth_curve(
    phonemes: Sequence[PhonemeSpan], duration: float, fps: float
) -> npt.NDArray[np.float32]:
    """``opening_at`` sampled at frame times k/fps for k in 0..ceil(duration*fps)-1."""
    if fps <= 0.0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    timeline = MouthTimeline(phonemes, duration)
    count = int(math.ceil(duration * fps))
    times = np.arange(count, dtype=np.float64) / fps
    return timeline.sample(times).astype(np.float32)
