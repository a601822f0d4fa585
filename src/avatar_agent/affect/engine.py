"""One affect model for every call in the process, fed in batches.

Each call submits a window of features and awaits its output. A single batcher task
collects what is pending (the first request, then whatever else arrives within
`max_wait_s`, up to `max_batch`) and runs one `predict(batch)` in an executor thread,
so the model never runs on the event loop and a GPU sees a few large batches instead
of many tiny ones. One FIFO queue and one batcher mean each call's results come back
in the order it submitted them.

The pending queue is bounded: when it is full `submit` raises `EngineBusy` at once,
because a call's media must never wait on analysis; the caller skips that update.

The batcher starts lazily on the first `submit` (or earlier through `start()`), on
the running event loop; `close()` stops it and fails whatever is still pending.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from avatar_agent.core.aio import cancel_and_wait

log = logging.getLogger(__name__)

W = TypeVar("W")
O = TypeVar("O")  # noqa: E741 (the names the API docs use: windows in, outputs out)


class EngineBusy(RuntimeError):
    """The pending queue is full; this window was not queued."""


class EngineClosed(RuntimeError):
    """The engine was closed before (or while) this window was analysed."""


@dataclass(eq=False)
class _Request(Generic[W, O]):
    call_id: str
    window: W
    future: asyncio.Future[O]


class AffectEngine(Generic[W, O]):
    def __init__(
        self,
        predict: Callable[[list[W]], list[O]],
        validate: Callable[[W], None] | None = None,
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_pending: int = 1024,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        self._predict = predict
        self._validate = validate
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self._owns_executor = executor is None
        # One thread: torch inference is serialised anyway, and a single worker keeps
        # batches strictly ordered.
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="affect"
        )
        self._queue: asyncio.Queue[_Request[W, O]] = asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self._batch: list[_Request[W, O]] = []  # collected or in predict, for close()
        self._closed = False
        self.batches = 0
        self.windows = 0
        self.last_batch_size = 0
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self.rejected = 0
        self.failed_batches = 0

    @property
    def pending(self) -> int:
        """Windows queued and not yet taken into a batch."""
        return self._queue.qsize()

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Start the batcher now; otherwise the first `submit` starts it."""
        self._ensure_started()

    def _ensure_started(self) -> None:
        if self._closed:
            raise EngineClosed("affect engine is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="affect-engine:batcher"
            )

    async def submit(self, call_id: str, window: W) -> O:
        """Analyse one window; raises ValueError (bad window), EngineBusy or EngineClosed."""
        self._ensure_started()
        if self._validate is not None:
            self._validate(window)  # a bad window fails here, before it can spoil a batch
        fut: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Request(call_id, window, fut))
        except asyncio.QueueFull:
            self.rejected += 1
            raise EngineBusy(
                f"affect engine busy: {self.max_pending} windows pending, call {call_id} skipped"
            ) from None
        return await fut

    async def close(self) -> None:
        """Stop the batcher and fail every request not yet answered with EngineClosed."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            await cancel_and_wait(self._task)
        error = EngineClosed("affect engine closed before this window was analysed")
        leftovers = list(self._batch)
        self._batch = []
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for req in leftovers:
            if not req.future.done():
                req.future.set_exception(error)
        if self._owns_executor:
            # wait=False: a predict still running finishes in its thread; its output is dropped
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._batch = []
            await self._collect(loop)
            live = [r for r in self._batch if not r.future.done()]  # skip cancelled submits
            if live:
                await self._dispatch(loop, live)

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> None:
        self._batch.append(await self._queue.get())
        deadline = loop.time() + self.max_wait_s
        while len(self._batch) < self.max_batch:
            try:
                self._batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    self._batch.append(await self._queue.get())
            except TimeoutError:
                return

    async def _dispatch(self, loop: asyncio.AbstractEventLoop, live: list[_Request[W, O]]) -> None:
        self.batches += 1
        self.windows += len(live)
        self.last_batch_size = len(live)
        self.batch_sizes[len(live)] += 1
        windows = [r.window for r in live]
        try:
            outputs = await loop.run_in_executor(self._executor, self._predict, windows)
            if len(outputs) != len(live):
                raise RuntimeError(
                    f"affect model returned {len(outputs)} outputs for {len(live)} windows"
                )
        except Exception as exc:
            # Only this batch fails; the calls in it skip one update and the next batch runs.
            self.failed_batches += 1
            calls = sorted({r.call_id for r in live})
            log.exception("affect batch of %d failed (calls %s)", len(live), ", ".join(calls))
            for req in live:
                if not req.future.done():
                    req.future.set_exception(exc)
            return
        for req, out in zip(live, outputs, strict=True):
            if not req.future.done():
                req.future.set_result(out)
