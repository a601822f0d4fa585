"""CPU time of this process by thread pool, read from the kernel at each scrape.

Every stage of a call runs on a pool of its own (render, analysis, tts, asr, the
encoders on asyncio's default executor, aiortc's decoder threads, the event loop on
the main thread), so the CPU seconds of each pool's threads are the split by stage a
capacity table needs, measured by the kernel rather than estimated. Of the threads
Python does not know, MediaPipe's graph threads are "mediapipe", and those a library
started while loading under `claim_new_threads` take that pool's name (the speech
recogniser's CTranslate2 worker is "asr"); the rest are summed as "native".
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

_TICKS = os.sysconf("SC_CLK_TCK")
_SELF_TASKS = Path("/proc/self/task")
_SUFFIX = re.compile(r"_\d+$")  # ThreadPoolExecutor names its threads prefix_0, prefix_1


def pool_name(thread_name: str) -> str:
    """`render_1` → `render`; `video-decoder` stays as it is."""
    return _SUFFIX.sub("", thread_name)


def _stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds from a /proc `stat` file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a whole process, all its threads (Linux)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


# Threads a library started inside claim_new_threads(pool) (CTranslate2's worker: the
# speech recogniser's compute runs there, not on the Python thread that waits for it).
_claimed: dict[int, str] = {}


def native_thread_names(task_dir: Path = _SELF_TASKS) -> dict[int, str]:
    """Pools of threads Python does not know: those a library started while loading
    under :func:`claim_new_threads`, and MediaPipe's graph threads, which name
    themselves `mediapipe/<tid>` in the kernel."""
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return dict(_claimed)
    if task_dir == _SELF_TASKS:  # a claimed thread that has ended frees its id for reuse
        for gone in set(_claimed) - {int(t) for t in tids}:
            _claimed.pop(gone, None)
    out = dict(_claimed)
    for tid in tids:
        if int(tid) in out:
            continue
        try:
            comm = (task_dir / tid / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("mediapipe/"):
            out[int(tid)] = "mediapipe"
    return out


@contextlib.contextmanager
def claim_new_threads(pool: str) -> Iterator[None]:
    """Count the threads that appear in this process during the block as `pool`.
    Only for loads that run alone (start-up): a thread another task starts meanwhile
    would be counted here too. Threads Python knows keep their own pool's name."""
    before = set(thread_cpu_seconds())
    try:
        yield
    finally:
        for tid in set(thread_cpu_seconds()) - before:
            _claimed.setdefault(tid, pool)


def thread_cpu_seconds(task_dir: Path = _SELF_TASKS) -> dict[int, float]:
    """User + system CPU seconds of each live thread, by its kernel thread id."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(task_dir)
    except OSError:  # not Linux: nothing to report
        return out
    for tid in tids:
        try:
            out[int(tid)] = _stat_cpu_seconds(task_dir / tid / "stat")
        except (OSError, IndexError):
            continue  # the thread ended while we looked
    return out


class PoolCpu:
    """Per-pool CPU seconds that only grow, though the threads of a pool come and go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended: dict[str, float] = {}  # seconds of threads that have exited, by pool
        self._live: dict[int, tuple[str, float]] = {}  # tid -> (pool, seconds last seen)

    def totals(self) -> dict[str, float]:
        names = native_thread_names()
        names.update({t.native_id: pool_name(t.name) for t in threading.enumerate()
                      if t.native_id is not None})
        return self.observe(names, thread_cpu_seconds())

    def observe(self, names: dict[int, str], seconds: dict[int, float]) -> dict[str, float]:
        """Totals by pool, given the pools Python names (by thread id) and the seconds
        the kernel reports for each live thread now."""
        with self._lock:
            for tid, (pool, last) in list(self._live.items()):
                if tid not in seconds:  # exited: keep what it used
                    self._ended[pool] = self._ended.get(pool, 0.0) + last
                    del self._live[tid]
            totals = dict(self._ended)
            for tid, secs in seconds.items():
                # A thread whose Python side has finished is still in /proc for a
                # moment, no longer in threading.enumerate(): it keeps the pool it had
                # (read as "native" its seconds would leave its pool's counter).
                known = self._live.get(tid)
                pool = names.get(tid) or (known[0] if known is not None else "native")
                self._live[tid] = (pool, secs)
                totals[pool] = totals.get(pool, 0.0) + secs
        return totals


class PoolCpuCollector(Collector):
    def __init__(self) -> None:
        self._pools = PoolCpu()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "avatar_agent_thread_cpu_seconds",
            "CPU seconds used by this process's threads, by pool (MainThread is the event loop)",
            labels=["pool"],
        )
        for pool, secs in sorted(self._pools.totals().items()):
            family.add_metric([pool], secs)
        yield family
