"""Real PostgreSQL and Redis for tests: throwaway instances from the Debian packages
(`postgresql`, `redis-server`; the Makefile's SYSTEM_DEPS installs them), each in its
own temporary directory on a free loopback port, stopped and deleted afterwards.

PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user
the package creates, and its commands run through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or (
        [p] if (p := shutil.which(name)) else [])
    if not found:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql")
    return found[-1]  # the newest major version installed


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait_port(port: int, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port}: {log.read_text(errors='replace')}")


_PG_DATA: dict[str, Path] = {}  # URL -> data directory, for restart_postgres


def restart_postgres(url: str) -> None:
    """Stop a cluster from `postgres()` at once (as a crash would) and start it again."""
    data = _PG_DATA[url]
    subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-l",
                              str(data.parent / "pg.log"), "-m", "immediate", "-w",
                              "-t", "30", "restart"]), check=True, capture_output=True)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A new PostgreSQL cluster; yields its SQLAlchemy URL (database `avatar`)."""
    root = Path(tempfile.mkdtemp(prefix="aa-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log, port = root / "data", root / "pg.log", free_port()
    subprocess.run(_as_owner([_pg_bin("initdb"), "-D", str(data), "-U", "avatar",
                              "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    try:
        subprocess.run(_as_owner([
            _pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
            "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start"]), check=True, capture_output=True)
        _wait_port(port, 30, "postgres", log)
        subprocess.run(_as_owner([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port),
                                  "-U", "avatar", "avatar"]), check=True, capture_output=True)
        url = f"postgresql://avatar@127.0.0.1:{port}/avatar"
        _PG_DATA[url] = data
        yield url
    finally:
        subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate",
                                  "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# URL -> its server and directory, for kill_redis
_REDIS: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}


def _start_redis(root: Path, port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(exe):
        raise RuntimeError("redis-server not found: install the Debian package redis-server")
    log = root / "redis.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", str(root)],
                                stdout=out, stderr=subprocess.STDOUT)
    _wait_port(port, 15, "redis-server", log)
    return proc


def kill_redis(url: str) -> Callable[[], None]:
    """Kill a server from `redis()` at once (as a crash would); returns what starts
    it again, empty, on the same port."""
    proc, root = _REDIS[url]
    proc.kill()
    proc.wait()
    port = int(url.rsplit(":", 1)[1].split("/")[0])

    def restart() -> None:
        _REDIS[url] = (_start_redis(root, port), root)
    return restart


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A new redis-server without persistence; yields its URL."""
    root = Path(tempfile.mkdtemp(prefix="aa-redis-"))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    _REDIS[url] = (_start_redis(root, port), root)
    try:
        yield url
    finally:
        proc, _ = _REDIS.pop(url)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
