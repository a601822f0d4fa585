"""Shared fixtures: real media made from ../shared/data, and a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVATAR_AGENT_DATA", REPO.parent / "shared" / "data"))
GRID = DATA / "talking_face" / "grid"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data not found at {DATA} (set AVATAR_AGENT_DATA)")
    return DATA


@pytest.fixture(scope="session")
def grid_clip(data_dir: Path) -> Path:
    return sorted(GRID.glob("*.mpg"))[0]


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], db: Path, log: Path) -> None:
        self.url = url
        self.proc = proc
        self.db = db
        self.log = log


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`avatar-agent serve` in a subprocess, on a free port, with its own SQLite file."""
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    db = tmp / "calls.db"
    cfg = tmp / "config.yaml"
    cfg.write_text(f"storage:\n  url: sqlite:///{db}\n")
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "avatar_agent.cli",
                "serve",
                "--config",
                str(cfg),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not start:\n" + log.read_text()[-4000:])
        time.sleep(0.3)
    yield LiveServer(url, proc, db, log)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
