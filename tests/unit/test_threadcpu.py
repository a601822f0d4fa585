"""CPU by thread pool, from the kernel's per-thread counters."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from avatar_agent.core.metrics import Metrics
from avatar_agent.core.threadcpu import (
    PoolCpu,
    claim_new_threads,
    native_thread_names,
    pool_name,
    process_cpu_seconds,
    thread_cpu_seconds,
)


def test_pool_names() -> None:
    assert pool_name("render_1") == "render"
    assert pool_name("asyncio_12") == "asyncio"
    assert pool_name("video-decoder") == "video-decoder"
    assert pool_name("MainThread") == "MainThread"


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1


def test_a_busy_pool_is_counted_and_kept_after_its_thread_ends() -> None:
    pools = PoolCpu()
    # no thread of that pool has run yet: whatever is counted below is the burner's
    assert "burner" not in pools.totals()
    assert threading.get_native_id() in thread_cpu_seconds()
    # The burner waits, once it has burnt, until it has been seen: with many threads in
    # the process a scrape can take longer than the burn, and a thread that starts and
    # ends between two scrapes is never seen at all (pools last for the process).
    seen_it = threading.Event()

    def burn_then_wait() -> None:
        _burn(0.3)
        seen_it.wait(10)

    t = threading.Thread(target=burn_then_wait, name="burner_0")
    t.start()
    deadline = time.monotonic() + 10
    while pools.totals().get("burner", 0.0) < 0.1 and time.monotonic() < deadline:
        time.sleep(0.02)  # seen while it runs...
    seen_it.set()
    t.join()
    seen = pools.totals().get("burner", 0.0)
    assert seen >= 0.1
    time.sleep(0.05)
    assert pools.totals().get("burner", 0.0) >= seen - 1e-9  # ...and not lost once it exits


def test_a_thread_finishing_keeps_its_pool() -> None:
    """Its Python side ends a moment before the kernel's thread: in between it is in
    /proc but not in threading.enumerate(), and must not turn "native"."""
    pools = PoolCpu()
    assert pools.observe({7: "decoder"}, {7: 0.2}) == {"decoder": 0.2}
    assert pools.observe({}, {7: 0.3}) == {"decoder": 0.3}
    assert pools.observe({}, {}) == {"decoder": 0.3}
    assert pools.observe({}, {8: 0.1}) == {"decoder": 0.3, "native": 0.1}


def test_metrics_export_the_pools() -> None:
    text = Metrics().render().decode()
    assert 'avatar_agent_thread_cpu_seconds_total{pool="MainThread"}' in text


def test_a_process_counts_the_cpu_of_all_its_threads() -> None:
    before = process_cpu_seconds(os.getpid())
    t = threading.Thread(target=_burn, args=(0.2,), name="burner2_0")
    t.start()
    t.join()
    assert process_cpu_seconds(os.getpid()) - before >= 0.15


def test_mediapipe_graph_threads_are_named_by_their_kernel_name(tmp_path: Path) -> None:
    for tid, comm in ((11, "mediapipe/11"), (12, "python"), (13, "mediapipe/13")):
        (tmp_path / str(tid)).mkdir()
        (tmp_path / str(tid) / "comm").write_text(comm + "\n")
    names = native_thread_names(tmp_path)
    assert names.get(11) == names.get(13) == "mediapipe"
    assert 12 not in names  # left as "native"


def test_threads_started_inside_a_claim_take_its_pool_unless_python_names_them() -> None:
    stop = threading.Event()
    with claim_new_threads("claimed"):
        t = threading.Thread(target=stop.wait, name="named_0")
        t.start()
    try:
        assert t.native_id is not None
        assert native_thread_names().get(t.native_id) == "claimed"
        pools = PoolCpu()
        totals = pools.totals()
        # Python's own name wins where it has one: no other thread was started meanwhile
        assert "named" in totals and "claimed" not in totals
    finally:
        stop.set()
        t.join()
    # once the thread has ended its id may be reused by another: the claim is dropped
    deadline = time.monotonic() + 5
    while t.native_id in native_thread_names() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert t.native_id not in native_thread_names()
