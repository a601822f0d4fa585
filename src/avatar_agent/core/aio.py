"""Small asyncio helpers: every task has an owner that cancels it and waits for it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel tasks and wait until they have really finished, even if we are cancelled."""
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        # shield: our own cancellation must not leave the tasks half torn down
        await asyncio.shield(asyncio.gather(*pending, return_exceptions=True))


async def build_in_executor(
    executor: concurrent.futures.Executor | None,
    build: Callable[[], T],
    close: Callable[[T], None],
) -> T:
    """`build()` in the executor; if we are cancelled while it runs, what it builds is
    closed (in the executor) as soon as it exists, instead of being left to leak.

    For objects that hold threads or native memory (a MediaPipe graph): a call that
    ends during its own set-up must not leave them behind.
    """
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(executor, build)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        def _close_built(done: asyncio.Future[T]) -> None:
            if not done.cancelled() and done.exception() is None:
                loop.run_in_executor(executor, close, done.result())

        fut.add_done_callback(_close_built)
        raise


class TaskSet:
    """Keeps fire-and-forget tasks referenced and cancels them together."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        await cancel_and_wait(*self._tasks)


class InlineExecutor(concurrent.futures.Executor):
    """Runs each job at once, in the thread that submits it.

    For a call run in virtual time (core.clock.VirtualClock): work then takes no
    virtual time and finishes before the clock moves, so the run is deterministic.
    Never for a server: it would run heavy work on the event loop.
    """

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting side, as a pool would
            future.set_exception(exc)
        return future
