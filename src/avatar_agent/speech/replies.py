"""Layered replies from customer-service practice: soothe, confirm, solve, repair.

A skilled agent does not answer an angry customer the way it answers a calm one:
it first meets the feeling (and in the first moments of fury, acknowledges it
rather than apologising by rote, never telling anyone to "calm down"), then shows
it understood the problem, then says what happens next, and with a furious
customer finally repairs the relationship. A calm customer gets a short friendly
answer and no apology. Which layers and which wordings come from `replies:` in the
config; each call rotates through the variants so the avatar does not repeat itself.

Pure: no clock, no I/O. Times are seconds on the call's media clock, passed in.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from avatar_agent.core.config import AnswerConfig
from avatar_agent.core.config_speech import LevelReplies, RepliesConfig
from avatar_agent.core.levels import LEVELS
from avatar_agent.speech.answers import Answer

APOLOGY = "apology"

# Sentences that apologise; the avatar's cues for them differ (mouth corners down).
_APOLOGY = re.compile(r"\b(sorry|apologi[sz]e[ds]?|apologies)\b", re.IGNORECASE)


def is_apology(text: str) -> bool:
    return _APOLOGY.search(text) is not None


def layer_of(layer: str | None, text: str) -> str | None:
    """The layer an utterance is tagged with: apologising text is `apology` whatever
    layer it came from; plain text (an operator's) stays None otherwise."""
    return APOLOGY if is_apology(text) else layer


@dataclass(frozen=True, slots=True)
class ReplyPart:
    layer: str  # soothe / confirm / solve / repair, or apology for apologising text
    text: str


def _tagged(layer: str, text: str) -> ReplyPart:
    tag = layer_of(layer, text)
    assert tag is not None
    return ReplyPart(tag, text)


class ReplyComposer:
    """One call's replies. Variants rotate per (level, layer), starting at an offset
    derived from the call id, so two calls do not open with the same words either."""

    def __init__(self, cfg: RepliesConfig, call_id: str = "") -> None:
        self.cfg = cfg
        self._offset = zlib.crc32(call_id.encode())
        self._turns: dict[tuple[str, str], int] = {}
        self._level = "calm"
        self._level_since = 0.0

    def observe_level(self, level: str, t: float) -> None:
        """Tell the composer the customer's level at time t (call it as levels arrive)."""
        if level != self._level:
            self._level = level
            self._level_since = t

    def level_for(self, level: str | None) -> LevelReplies:
        if level not in LEVELS:
            level = "calm"
        replies: LevelReplies = getattr(self.cfg, level)
        return replies

    def compose(self, level: str | None, t: float, since: float | None = None) -> list[ReplyPart]:
        """The reply for a customer at `level` at time t.

        `since` is when the customer reached that level; without it, the time the
        composer itself saw the level change (see observe_level) is used.
        """
        level, replies, fresh = self._context(level, t, since)
        return [self._part(level, replies, layer, fresh) for layer in replies.layers]

    def _context(self, level: str | None, t: float, since: float | None
                 ) -> tuple[str, LevelReplies, bool]:
        """The level to answer at, its replies, and whether the customer reached it
        so recently that the feeling is met first."""
        known = level if level in LEVELS else "calm"
        assert known is not None
        if since is None:
            self.observe_level(known, t)
            since = self._level_since
        return known, self.level_for(known), t - since < self.cfg.acknowledge_s

    def _part(self, level: str, replies: LevelReplies, layer: str, fresh: bool) -> ReplyPart:
        key = layer
        if layer == "soothe" and fresh and replies.acknowledge:
            key = "acknowledge"  # meet the feeling before any apology
        return _tagged(layer, self._pick(level, key, getattr(replies, key)))

    def compose_answer(self, level: str | None, t: float, answer: Answer, words: AnswerConfig,
                       since: float | None = None) -> list[ReplyPart]:
        """The reply to what the customer said: soothe (by level, as `compose`), confirm
        (the question in the agent's words), solve (the answer), repair (by level).
        When the agent cannot answer it says so in the solve layer, and when the
        customer asked for a person it says one is coming."""
        level, replies, fresh = self._context(level, t, since)
        parts: list[ReplyPart] = []
        if "soothe" in replies.layers:
            parts.append(self._part(level, replies, "soothe", fresh))
        if answer.kind == "person":
            return [*parts, _tagged("solve", words.handoff)]
        if answer.confirm:
            parts.append(_tagged("confirm", answer.confirm))
        parts.append(_tagged("solve", answer.text if answer.kind == "answer"
                             else words.unanswered))
        if "repair" in replies.layers:
            parts.append(self._part(level, replies, "repair", fresh))
        return parts

    def _pick(self, level: str, key: str, variants: list[str]) -> str:
        n = self._turns.get((level, key), 0)
        self._turns[(level, key)] = n + 1
        return variants[(self._offset + n) % len(variants)]
