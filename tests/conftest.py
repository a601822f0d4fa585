"""Shared fixtures: real media made from ../shared/data, and a real server process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import spawn_server, stop_server

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVATAR_AGENT_DATA", REPO.parent / "shared" / "data"))
GRID = DATA / "talking_face" / "grid"


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
    try:
        proc, url = spawn_server(tmp, REPO)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield LiveServer(url, proc, tmp / "calls.db", tmp / "server.log")
    stop_server(proc)


@pytest.fixture(scope="session")
def held_out_speakers(data_dir: Path) -> set[str]:
    """Speakers the shipped affect weights never trained on: their early-stopping fold."""
    from avatar_agent.affect.labels import discover, one_per_recording
    from avatar_agent.training.train import N_FOLDS, assign_folds

    clips, _ = one_per_recording(discover(data_dir)[0])
    folds = assign_folds([lab.speaker for _, lab in clips])
    return {s for s, f in folds.items() if f == N_FOLDS - 1}
