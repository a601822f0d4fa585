"""`avatar-agent analyze` on real clips and on bad files, as a user runs it."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest


def run_analyze(clip: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "analyze", str(clip), "--out", str(out), *extra],
        capture_output=True, text=True, timeout=300,
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a real plot, not an empty canvas


def test_audio_visual_clip(grid_clip: Path, tmp_path: Path) -> None:
    res = run_analyze(grid_clip, tmp_path)
    assert res.returncode == 0, res.stderr
    rows = read_rows(tmp_path / "features.csv")
    face = [r for r in rows if r["stream"] == "face"]
    voice = [r for r in rows if r["stream"] == "voice"]
    assert 27 <= len(face) <= 32  # 3 s of 25 fps video analysed at the default 10 fps
    assert 280 <= len(voice) <= 320  # one row per 10 ms hop
    ts = [float(r["t"]) for r in rows]
    assert ts == sorted(ts)
    assert sum(r["face_present"] == "1" for r in face) / len(face) >= 0.95
    assert any(r["voiced"] == "1" for r in voice)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["face"]["present_ratio"] >= 0.95
    assert summary["voice"]["speech_segments"], "GRID clips are read speech"
    # how fast is a benchmark's question (scripts/bench_perception.py); here: reported
    assert summary["x_real_time"] > 0
    check_png(tmp_path / "features.png")


def test_audio_only_clip(data_dir: Path, tmp_path: Path) -> None:
    clip = sorted((data_dir / "speech_emotion" / "ravdess" / "Actor_01").glob("*.flac"))[0]
    res = run_analyze(clip, tmp_path)
    assert res.returncode == 0, res.stderr
    rows = read_rows(tmp_path / "features.csv")
    assert rows and all(r["stream"] == "voice" for r in rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "face" not in summary and summary["voice"]["voiced_ratio"] > 0.1
    check_png(tmp_path / "features.png")


def test_video_only_clip_every_frame(data_dir: Path, tmp_path: Path) -> None:
    clip = data_dir / "face_video" / "mead" / "M030_front_angry_level3_001.mp4"
    res = run_analyze(clip, tmp_path, "--max-fps", "0")
    assert res.returncode == 0, res.stderr
    rows = read_rows(tmp_path / "features.csv")
    assert rows and all(r["stream"] == "face" for r in rows)
    ts = [float(r["t"]) for r in rows]
    assert max(b - a for a, b in zip(ts, ts[1:], strict=False)) < 0.05  # every 25 fps frame
    assert json.loads((tmp_path / "summary.json").read_text())["face"]["present_ratio"] >= 0.95


@pytest.mark.parametrize("kind", ["empty", "text", "missing", "truncated", "corrupt", "folder"])
def test_bad_files_give_one_line_error(kind: str, grid_clip: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    if kind == "empty":
        clip.write_bytes(b"")
    elif kind == "text":
        clip.write_text("this is not a video\n" * 50)
    elif kind == "truncated":
        clip = tmp_path / "clip.mpg"
        clip.write_bytes(grid_clip.read_bytes()[:2000])
    elif kind == "corrupt":
        clip = tmp_path / "clip.mpg"
        rng = random.Random(0)
        clip.write_bytes(grid_clip.read_bytes()[:4096] + rng.randbytes(200_000))
    elif kind == "folder":
        clip = tmp_path
    res = run_analyze(clip, tmp_path / "out")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert not (tmp_path / "out" / "features.csv").exists()


def test_csv_columns_line_up(grid_clip: Path, tmp_path: Path) -> None:
    assert run_analyze(grid_clip, tmp_path).returncode == 0
    with (tmp_path / "features.csv").open(newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert all(len(r) == len(header) for r in rows)
    voiced = [r for r in rows if r[1] == "voice" and r[header.index("voiced")] == "1"]
    assert voiced and all(float(r[header.index("f0_hz")]) > 50 for r in voiced)
