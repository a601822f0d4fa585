"""A poor network for a test customer, inside its own peer: some RTP packets, both
ways, are dropped and some arrive late (and so out of order).

This kernel has no netem, and a customer's bad network is what the server must live
with; impairing the customer's own aiortc peer (its DTLS transports, where RTP is
encrypted on the way out and decrypted on the way in) does it without touching the
server. RTCP and the data channel go through untouched, as on most real networks
that mostly lose media under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection
from aiortc.rtp import is_rtcp


@dataclass
class Impairment:
    loss: float = 0.05  # share of RTP packets dropped, each way
    late: float = 0.05  # share delayed by up to `delay_s` (overtaken by later ones)
    delay_s: float = 0.08
    seed: int = 1
    dropped: int = 0
    delayed: int = 0
    passed: int = 0
    _rng: random.Random = field(init=False)
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _fate(self) -> float | None:
        """None: drop; 0: now; > 0: that late."""
        r = self._rng.random()
        if r < self.loss:
            self.dropped += 1
            return None
        if r < self.loss + self.late:
            self.delayed += 1
            return self._rng.uniform(0.02, self.delay_s)
        self.passed += 1
        return 0.0

    def _later(self, delay: float, send: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            # a late packet whose connection has closed meanwhile is simply lost
            with contextlib.suppress(ConnectionError):
                await send()

        task = asyncio.ensure_future(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def apply(self, pc: RTCPeerConnection) -> None:
        """Impair every DTLS transport the peer has now (after its remote description)."""
        seen: set[int] = set()
        for transceiver in pc.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls is None or id(dtls) in seen:
                continue
            seen.add(id(dtls))
            self._wrap(dtls)

    def _wrap(self, dtls: object) -> None:
        send: Callable[[bytes], Awaitable[None]] = dtls._send_rtp  # type: ignore[attr-defined]
        handle: Callable[[bytes, int], Awaitable[None]] = (
            dtls._handle_rtp_data)  # type: ignore[attr-defined]

        async def lossy_send(data: bytes) -> None:
            fate = 0.0 if is_rtcp(data) else self._fate()
            if fate is None:
                return
            if fate > 0:
                self._later(fate, lambda: send(data))
                return
            await send(data)

        async def lossy_handle(data: bytes, arrival_time_ms: int) -> None:
            fate = self._fate()
            if fate is None:
                return
            if fate > 0:
                late_ms = arrival_time_ms + round(fate * 1000)
                self._later(fate, lambda: handle(data, late_ms))
                return
            await handle(data, arrival_time_ms)

        setattr(dtls, "_send_rtp", lossy_send)  # noqa: B010 (this one instance's)
        setattr(dtls, "_handle_rtp_data", lossy_handle)  # noqa: B010

    def cancel(self) -> None:
        for task in list(self._pending):
            task.cancel()
