"""The escalation policy: when a call needs a human operator.

Pure and per call: fed the call's affect snapshots (media time, anger index, level)
and the customer's requests, it answers with at most one `Escalation` per cooldown.
No clock of its own, no I/O; the watcher in `watcher.py` feeds it from the event bus,
and training replays recorded calls through it. Its inputs stay plain numbers because
a replayed call has only the anger index and level, not a whole `AffectUpdate`.

What it answers is the bus's own `core.events.Escalation`, without a call, a stored id
or context yet: the watcher fills those in before publishing it.

Rules (thresholds from `EscalationConfig`):
- `rule: hold`: the anger index stays at or above `anger_threshold` for `hold_s` seconds;
- `rule: evidence`: the index's excess over `evidence_ref`, summed over
  time, reaches `evidence_needed`: a one-sided CUSUM, the classic quickest-detection
  rule. Every second at index x adds x - ref (index x seconds); the sum never goes
  below 0, so calm stretches wipe it. A reading of 95 gets there sooner than one of 60,
  which a fixed hold cannot tell apart;
- the level reaches furious (`on_furious`);
- the customer asks for a person (`on_customer_request`), with the page's button or
  in words ("talk to a human", "人工");
- the agent could not answer what the customer said (`on_unanswered`).
"""

from __future__ import annotations

from avatar_agent.core.config import EscalationConfig
from avatar_agent.core.events import Escalation

__all__ = ["REASON_ANGER", "REASON_FURIOUS", "REASON_REQUEST", "REASON_UNANSWERED",
           "Escalation", "EscalationPolicy"]

REASON_ANGER = "sustained_anger"
REASON_FURIOUS = "furious"
REASON_REQUEST = "customer_request"
REASON_UNANSWERED = "unanswered"


def _escalation(reason: str, t: float, anger_index: float | None, level: str | None,
                detail: str) -> Escalation:
    """An escalation as the policy decides it: `t` is the call's media time when it fired,
    `detail` one line for the operator; no call or stored id yet."""
    return Escalation(id=None, reason=reason, t=t, anger_index=anger_index, level=level,
                      detail=detail)


class EscalationPolicy:
    def __init__(self, cfg: EscalationConfig) -> None:
        self.cfg = cfg
        self._above_since: float | None = None
        self._last_fired: float | None = None
        self._last_request: float | None = None
        self._last_unanswered: float | None = None
        self._last_index: float | None = None
        self._last_level: str | None = None
        self._last_t: float | None = None
        self.evidence = 0.0  # index x seconds above `evidence_ref`, for the evidence rule
        self.fired: list[Escalation] = []

    def _cooling(self, t: float) -> bool:
        return self._last_fired is not None and t - self._last_fired < self.cfg.cooldown_s

    def _fire(self, esc: Escalation) -> Escalation | None:
        if self._cooling(esc.t):
            return None
        self._last_fired = esc.t
        self.fired.append(esc)
        return esc

    def update(self, t: float, anger_index: float, level: str) -> Escalation | None:
        """One affect snapshot; returns an escalation when one of the affect rules fires."""
        prev_level = self._last_level
        self._last_index, self._last_level = anger_index, level
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        evidence_rule = self.cfg.rule == "evidence"
        if evidence_rule:
            self.evidence = max(0.0, self.evidence + dt * (anger_index - self.cfg.evidence_ref))
        if anger_index >= self.cfg.anger_threshold:
            if self._above_since is None:
                self._above_since = t
        else:
            self._above_since = None
        if self.cfg.on_furious and level == "furious" and prev_level != "furious":
            return self._fire(_escalation(
                REASON_FURIOUS, t, anger_index, level,
                f"level furious (anger index {anger_index:.0f})",
            ))
        if evidence_rule and self.evidence >= self.cfg.evidence_needed:
            esc = self._fire(_escalation(
                REASON_ANGER, t, anger_index, level,
                f"anger index above {self.cfg.evidence_ref:.0f} by {self.evidence:.0f} "
                "index-seconds in all",
            ))
            if esc is not None:
                self.evidence = 0.0  # a new escalation needs new evidence
            return esc
        if evidence_rule:
            return None
        if self._above_since is not None and t - self._above_since >= self.cfg.hold_s:
            held = t - self._above_since
            esc = self._fire(_escalation(
                REASON_ANGER, t, anger_index, level,
                f"anger index {anger_index:.0f} >= {self.cfg.anger_threshold:.0f} "
                f"for {held:.1f} s",
            ))
            if esc is not None:
                # a new escalation for anger needs a new full hold, not the same one
                self._above_since = None
            return esc
        return None

    def customer_request(self, t: float) -> Escalation | None:
        """The customer asked for a person.

        An explicit request is never swallowed by an earlier affect escalation's
        cooldown; only repeated presses of the button within the cooldown are.
        """
        if not self.cfg.on_customer_request:
            return None
        if self._last_request is not None and t - self._last_request < self.cfg.cooldown_s:
            return None
        self._last_request = t
        esc = _escalation(REASON_REQUEST, t, self._last_index, self._last_level,
                          "the customer asked to talk to a person")
        self._last_fired = t
        self.fired.append(esc)
        return esc

    def unanswered(self, t: float, text: str) -> Escalation | None:
        """The agent had no answer to the customer's words: AI first, and a person joins
        precisely when it cannot help. Like a request, never swallowed by an affect
        escalation's cooldown; a second unanswered turn within the cooldown is."""
        if not self.cfg.on_unanswered:
            return None
        if self._last_unanswered is not None and t - self._last_unanswered < self.cfg.cooldown_s:
            return None
        self._last_unanswered = t
        esc = _escalation(REASON_UNANSWERED, t, self._last_index, self._last_level,
                          f"the agent could not answer: {text[:200]}")
        self._last_fired = t
        self.fired.append(esc)
        return esc
