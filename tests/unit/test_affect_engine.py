from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

from avatar_agent.affect.engine import AffectEngine, EngineBusy, EngineClosed


def double(batch: list[int]) -> list[int]:
    return [2 * w for w in batch]


def non_negative(w: int) -> None:
    if w < 0:
        raise ValueError(f"window {w} is negative")


class Gate:
    """A predict that blocks in its thread until the test opens the gate."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, batch: list[int]) -> list[int]:
        self.batches.append(list(batch))
        self.started.set()
        if not self.release.wait(5):
            raise TimeoutError("gate never opened")
        return double(batch)

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, 5), "predict never started"


async def test_concurrent_requests_are_batched() -> None:
    sizes: list[int] = []

    def predict(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        time.sleep(0.01)  # a model call takes time, so requests pile up meanwhile
        return double(batch)

    engine = AffectEngine(predict, max_batch=8, max_wait_s=0.01)
    async with asyncio.timeout(5):
        out = await asyncio.gather(*(engine.submit(f"c{i % 4}", i) for i in range(20)))
    await engine.close()
    assert out == [2 * i for i in range(20)]
    assert len(sizes) < 20
    assert max(sizes) <= 8
    assert sum(sizes) == 20
    assert engine.batches == len(sizes)
    assert engine.windows == 20
    assert sum(engine.batch_sizes.values()) == len(sizes)
    assert sum(k * n for k, n in engine.batch_sizes.items()) == 20
    assert engine.last_batch_size == sizes[-1]


async def test_results_per_call_come_back_in_submission_order() -> None:
    seen: list[int] = []

    def predict(batch: list[int]) -> list[int]:
        seen.extend(batch)
        return double(batch)

    engine = AffectEngine(predict, max_batch=3, max_wait_s=0.002)
    completed: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    async def one(call: str, w: int) -> None:
        assert await engine.submit(call, w) == 2 * w
        completed[call].append(w)

    calls = ["a", "b", "c"]
    async with asyncio.timeout(5):
        await asyncio.gather(*(one(calls[i % 3], i) for i in range(30)))
    await engine.close()
    for k, call in enumerate(calls):
        expected = list(range(k, 30, 3))
        assert completed[call] == expected
        assert [w for w in seen if w % 3 == k] == expected
    assert engine.batches >= 10  # max_batch 3 forces several batches


async def test_bad_window_fails_alone() -> None:
    batches: list[list[int]] = []

    def predict(batch: list[int]) -> list[int]:
        batches.append(list(batch))
        return double(batch)

    engine = AffectEngine(predict, non_negative, max_wait_s=0.01)
    async with asyncio.timeout(5):
        out = await asyncio.gather(
            *(engine.submit("c", w) for w in (1, 2, -3, 4)), return_exceptions=True
        )
    await engine.close()
    assert out[:2] == [2, 4] and out[3] == 8
    assert isinstance(out[2], ValueError) and "negative" in str(out[2])
    assert all(-3 not in b for b in batches)


async def test_predict_error_fails_only_its_batch() -> None:
    def predict(batch: list[int]) -> list[int]:
        if 13 in batch:
            raise RuntimeError("model exploded")
        return double(batch)

    engine = AffectEngine(predict, max_wait_s=0.01)
    async with asyncio.timeout(5):
        bad = await asyncio.gather(
            *(engine.submit("c", w) for w in (12, 13)), return_exceptions=True
        )
        assert all(isinstance(e, RuntimeError) and "exploded" in str(e) for e in bad)
        assert await engine.submit("c", 5) == 10
    await engine.close()
    assert engine.failed_batches == 1
    assert engine.batches == 2


async def test_wrong_number_of_outputs_is_an_error() -> None:
    engine: AffectEngine[int, int] = AffectEngine(lambda b: [0], max_wait_s=0.01)
    async with asyncio.timeout(5):
        out = await asyncio.gather(*(engine.submit("c", w) for w in (1, 2)), return_exceptions=True)
    await engine.close()
    assert all(isinstance(e, RuntimeError) and "2 windows" in str(e) for e in out)


async def test_busy_when_the_pending_bound_is_hit() -> None:
    gate = Gate()
    engine = AffectEngine(gate, max_batch=1, max_wait_s=0, max_pending=2)
    first = asyncio.create_task(engine.submit("a", 1))
    await gate.wait_started()  # the batcher holds window 1 in predict; the queue is empty
    queued = [asyncio.create_task(engine.submit("b", w)) for w in (2, 3)]
    await asyncio.sleep(0)
    assert engine.pending == 2
    t0 = time.perf_counter()
    with pytest.raises(EngineBusy, match="busy"):
        await engine.submit("c", 4)
    assert time.perf_counter() - t0 < 0.05  # refused at once, not after waiting
    assert engine.rejected == 1
    gate.release.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(first, *queued) == [2, 4, 6]
    await engine.close()


async def test_close_fails_pending_and_leaves_no_task() -> None:
    gate = Gate()
    engine = AffectEngine(gate, max_batch=1, max_wait_s=0)
    tasks = [asyncio.create_task(engine.submit("a", w)) for w in range(4)]
    await gate.wait_started()
    await engine.close()
    async with asyncio.timeout(5):
        out = await asyncio.gather(*tasks, return_exceptions=True)
    gate.release.set()  # let the worker thread finish its (discarded) predict
    assert all(isinstance(e, EngineClosed) for e in out)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(EngineClosed):
        await engine.submit("a", 9)
    await engine.close()  # idempotent


async def test_cancelled_submit_does_not_break_the_batcher() -> None:
    gate = Gate()
    engine = AffectEngine(gate, max_batch=4, max_wait_s=0)
    first = asyncio.create_task(engine.submit("a", 1))
    await gate.wait_started()
    doomed = asyncio.create_task(engine.submit("b", 2))
    await asyncio.sleep(0)
    doomed.cancel()
    gate.release.set()
    async with asyncio.timeout(5):
        assert await first == 2
        assert await engine.submit("c", 3) == 6
    assert doomed.cancelled()
    assert all(2 not in b for b in gate.batches)  # the cancelled window never reached predict
    await engine.close()


async def test_predict_runs_off_the_event_loop_thread() -> None:
    threads: list[int] = []

    def predict(batch: list[int]) -> list[int]:
        threads.append(threading.get_ident())
        return double(batch)

    engine = AffectEngine(predict)
    await engine.start()
    async with asyncio.timeout(5):
        assert await engine.submit("a", 1) == 2
    await engine.close()
    assert threads and threading.get_ident() not in threads


async def test_given_executor_is_used_and_left_open() -> None:
    names: list[str] = []

    def predict(batch: list[int]) -> list[int]:
        names.append(threading.current_thread().name)
        return double(batch)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as pool:
        engine = AffectEngine(predict, executor=pool)
        async with asyncio.timeout(5):
            assert await engine.submit("a", 2) == 4
        await engine.close()
        assert pool.submit(lambda: 7).result(timeout=5) == 7  # still usable
    assert names[0].startswith("mine")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        AffectEngine(double, max_batch=0)
    with pytest.raises(ValueError):
        AffectEngine(double, max_wait_s=-1)
