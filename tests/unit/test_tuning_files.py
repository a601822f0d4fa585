"""The tuning page's file writes: one step, same permissions, nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avatar_agent.operators.tuning import write_atomic


def test_write_atomic_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "support.yaml"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    write_atomic(path, "café: 1\r\n".encode())
    assert path.read_bytes() == "café: 1\r\n".encode()
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.stat().st_ino != inode  # a new file renamed over: readers see old or new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["support.yaml"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "support.yaml"
    path.write_bytes(b"old\n")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["support.yaml"]
