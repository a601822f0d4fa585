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
from avatar_agent.affect.engine import AffectEngine
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectOutput, AffectWindow
from avatar_agent.affect.script import AffectScript
from avatar_agent.affect.state import AffectSnapshot
from avatar_agent.core.config import AffectConfig
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
        send: Callable[[dict[str, Any]], None],
        publish: Callable[[dict[str, Any]], None],
        store: Callable[[list[dict[str, Any]], list[dict[str, Any]]], Any],
        script: AffectScript | None = None,
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
        self.core = CallAffectCore(cfg)
        self.last: AffectSnapshot | None = None
        self.curve: list[dict[str, Any]] = []  # points not yet written
        self.events: list[dict[str, Any]] = []
        self._micro_seen = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.cfg.rate_hz
        latency = self._metrics.stage_seconds.labels("affect")
        due = loop.time()
        next_store = loop.time() + STORE_EVERY_S
        began = self._media_time()
        try:
            while True:
                due = max(due + period, loop.time())
                await asyncio.sleep(due - loop.time())
                self._pass_micro()
                now = self._media_time()
                if self._script is not None:
                    out = self._script.output_at(now - began)
                    self._emit(self.core.state.update(
                        now, out.arousal, out.valence, out.probs, EMOTIONS))
                    window = None
                else:
                    window = self.core.window(now, self._p.model_voice, self._p.model_face,
                                              self._p.speech)
                if window is not None:
                    assert self._engine is not None
                    t0 = time.perf_counter()
                    try:
                        out = await self._engine.submit(self.call_id, window)
                    except Exception as exc:  # this update is lost, the call goes on
                        self.core.skip()
                        self._metrics.affect_windows.labels("failed").inc()
                        log.warning("affect window of call %s failed: %s", self.call_id, exc)
                    else:
                        latency.observe(time.perf_counter() - t0)
                        self._metrics.affect_windows.labels("ok").inc()
                        self._emit(self.core.observe(now, out))
                if loop.time() >= next_store:
                    next_store = loop.time() + STORE_EVERY_S
                    await self.flush()
        finally:
            await asyncio.shield(self.flush())

    def _emit(self, snap: AffectSnapshot) -> None:
        self.last = snap
        msg = snap.message()
        self._send(msg)
        self._publish({**msg, "call_id": self.call_id})
        self.curve.append({k: msg[k] for k in
                           ("t", "arousal", "valence", "anger_index", "level", "emotion")})
        if snap.level_changed:
            ev = {"t": snap.t, "kind": "level", "level": snap.level,
                  "anger_index": msg["anger_index"]}
            self.events.append(ev)
            self._publish({"type": "event", "call_id": self.call_id, **ev})

    def _pass_micro(self) -> None:
        """Micro-expressions found by perception go to operators and the timeline as is."""
        micro = list(self._p.micro)
        total = self._p.micro_total
        fresh = micro[len(micro) - min(len(micro), total - self._micro_seen):]
        self._micro_seen = total
        for m in fresh:
            ev = {"t": m.onset, "kind": "micro_expression", "type": m.kind,
                  "duration": m.duration, "peak": float(np.round(m.peak, 3))}
            self.events.append(ev)
            self._publish({"type": "event", "call_id": self.call_id, **ev})

    async def flush(self) -> None:
        points, events = self.curve, self.events
        self.curve, self.events = [], []
        if points or events:
            try:
                await self._store(points, events)
            except Exception:  # storage trouble must not end the call
                log.exception("could not store the affect timeline of call %s", self.call_id)
