"""Failures of one call's stages: each counted, each kind logged once.

A stage that raises inside a call (face or voice analysis, voice activity, the affect
window, the cue loop, a reply's synthesis) costs that call that step, never the call
and never another call: the stage's loop catches the error, hands it here and goes
on. A stage that fails on every frame or tick would otherwise write a traceback ten
times a second, so only the first failure of each (stage, exception type) is logged
with its traceback; the rest are counted (`avatar_agent_stage_failures`) and summed up
in one line when the call ends.
"""

from __future__ import annotations

import logging
from collections import Counter

from avatar_agent.core.metrics import Metrics

log = logging.getLogger(__name__)


class StageFaults:
    def __init__(self, call_id: str, metrics: Metrics | None = None) -> None:
        self.call_id = call_id
        self._metrics = metrics
        self.counts: Counter[tuple[str, str]] = Counter()  # (stage, exception type) -> n

    def failed(self, stage: str, exc: BaseException) -> None:
        key = (stage, type(exc).__name__)
        self.counts[key] += 1
        if self._metrics is not None:
            self._metrics.stage_failures.labels(stage).inc()
        if self.counts[key] == 1:
            log.error("call %s: %s failed (%s: %s); the call goes on without that step, "
                      "later failures of this kind are only counted",
                      self.call_id, stage, key[1], exc, exc_info=exc)

    def summary(self) -> None:
        """One line at the end of the call, if any stage failed."""
        if self.counts:
            log.warning("call %s: stage failures %s", self.call_id, ", ".join(
                f"{stage} {kind} x{n}" for (stage, kind), n in sorted(self.counts.items())))
