"""Affect during a call: windows from the call's perception rings to the shared engine,
the results smoothed into the customer's state and sent where they are needed.

Only runs for customers who consented (it reads what CallPerception measured). A
failed or rejected window costs that one update, never the call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from avatar_agent.affect.call_core import CallAffectCore
from avatar_agent.affect.engine import AffectEngine, EngineBusy
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectOutput, AffectWindow
from avatar_agent.affect.script import AffectScript
from avatar_agent.affect.state import AffectSnapshot
from avatar_agent.core.clock import Clock, LoopClock, Ticker
from avatar_agent.core.config import AffectConfig
from avatar_agent.core.events import (
    AffectUpdate,
    Event,
    LevelChanged,
    MicroExpressionSeen,
    timeline_entry,
)
from avatar_agent.core.faults import StageFaults
from avatar_agent.core.metrics import Metrics
from avatar_agent.perception.live import CallPerception

log = logging.getLogger(__name__)

STORE_EVERY_S = 2.0  # curve points are written in small batches


class CallAffect:
    def __init__(
        self,
        call_id: str,
        cfg: AffectConfig,
        engine: AffectEngine[AffectWindow, AffectOutput] | None,
        perception: CallPerception,
        metrics: Metrics,
        media_time: Callable[[], float],
        send: Callable[[Event], None],
        publish: Callable[[Event], None],
        store: Callable[[list[dict[str, Any]], list[dict[str, Any]]], Any],
        script: AffectScript | None = None,
        clock: Clock | None = None,
        faults: StageFaults | None = None,
    ) -> None:
        if (engine is None) == (script is None):
            raise ValueError("affect needs either the engine or a script, not both")
        self.call_id = call_id
        self.cfg = cfg
        self._engine = engine
        self._p = perception
        self._metrics = metrics
        self._media_time = media_time
        self._send = send
        self._publish = publish
        self._store = store
        self._script = script
        self._clock: Clock = clock or LoopClock()
        self._faults = faults or StageFaults(call_id, metrics)
        self.core = CallAffectCore(cfg)
        self.last: AffectSnapshot | None = None
        self.curve: list[dict[str, Any]] = []  # points not yet written
        self.events: list[dict[str, Any]] = []
        self._micro_seen = 0

    async def run(self) -> None:
        latency = self._metrics.stage_seconds.labels("affect")
        ticker = Ticker(self._clock, 1.0 / self.cfg.rate_hz)
        next_store = self._clock.now() + STORE_EVERY_S
        began = self._media_time()
        try:
            while True:
                tick = await ticker.tick()
                try:
                    await self._step(began, latency)
                except Exception as exc:  # this update is lost, the call goes on
                    self._faults.failed("affect", exc)
                if tick >= next_store:
                    next_store = tick + STORE_EVERY_S
                    await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def _step(self, began: float, latency: Any) -> None:
        """One reading: the window of the last seconds to the model, its output to the
        customer's state (or the script's output at this moment)."""
        self._pass_micro()
        now = self._media_time()
        if self._script is not None:
            out = self._script.output_at(now - began)
            self._emit(self.core.state.update(now, out.arousal, out.valence, out.probs, EMOTIONS))
            return
        window = self.core.window(now, self._p.model_voice, self._p.model_face, self._p.speech)
        if window is None:
            return
        assert self._engine is not None
        t0 = time.perf_counter()
        try:
            out = await self._engine.submit(self.call_id, window)
        except Exception as exc:
            self.core.skip()  # its rows go untaught, as after an angry reading
            self._metrics.affect_windows.labels("failed").inc()
            if isinstance(exc, EngineBusy):
                return  # the shared model sheds load: counted above, not a fault of the call
            raise
        latency.observe(time.perf_counter() - t0)
        self._metrics.affect_windows.labels("ok").inc()
        self._emit(self.core.observe(now, out))

    def _emit(self, snap: AffectSnapshot) -> None:
        self.last = snap
        update = snap.update(self.call_id)
        self._send(update)
        self._publish(update)
        self.curve.append(update.point())
        if snap.level_changed:
            self._timeline(LevelChanged(call_id=self.call_id, t=update.t, level=snap.level,
                                        anger_index=update.anger_index))

    @property
    def last_update(self) -> AffectUpdate | None:
        """The latest reading as the operators get it."""
        return None if self.last is None else self.last.update(self.call_id)

    def _timeline(self, ev: Event) -> None:
        self.events.append(timeline_entry(ev))
        self._publish(ev)

    def _pass_micro(self) -> None:
        """Micro-expressions found by perception go to operators and the timeline as is."""
        micro = list(self._p.micro)
        total = self._p.micro_total
        fresh = micro[len(micro) - min(len(micro), total - self._micro_seen):]
        self._micro_seen = total
        for m in fresh:
            self._timeline(MicroExpressionSeen(
                call_id=self.call_id, t=m.onset, expression=m.kind, duration=m.duration,
                peak=float(np.round(m.peak, 3))))

    async def flush(self) -> None:
        points, events = self.curve, self.events
        self.curve, self.events = [], []
        if points or events:
            try:
                await self._store(points, events)
            except Exception:  # storage trouble must not end the call
                log.exception("could not store the affect timeline of call %s", self.call_id)
