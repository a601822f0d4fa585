"""`avatar-agent preview`: the persona contact sheet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from avatar_agent.avatar.behavior import STATES
from avatar_agent.avatar.preview import CELL, MARGIN_LEFT, MARGIN_TOP, sheet_size
from avatar_agent.core.levels import LEVELS

REPO = Path(__file__).resolve().parents[2]


def cells(sheet: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for i, level in enumerate(LEVELS):
        for j, state in enumerate(STATES):
            y, x = MARGIN_TOP + i * CELL[1], MARGIN_LEFT + j * CELL[0]
            out[level, state] = sheet[y:y + CELL[1], x:x + CELL[0]].astype(int)
    return out


def test_preview_writes_a_labelled_grid_whose_cells_differ(tmp_path: Path) -> None:
    sheets = {}
    for name in ("support", "receptionist"):
        out = tmp_path / f"{name}.png"
        res = subprocess.run(
            [sys.executable, "-m", "avatar_agent.cli", "preview", "--behavior",
             str(REPO / "configs" / "behaviors" / f"{name}.yaml"), "--out", str(out)],
            capture_output=True, text=True, timeout=120,
        )
        assert res.returncode == 0, res.stderr
        img = cv2.imread(str(out))
        assert img is not None
        assert (img.shape[1], img.shape[0]) == sheet_size() == (120 + 4 * 320, 56 + 3 * 240)
        assert img[:MARGIN_TOP, MARGIN_LEFT:].min() < 100  # state labels drawn
        sheets[name] = cells(img)
    support = sheets["support"]
    # every cell of the support persona is its own picture
    keys = list(support)
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            diff = np.abs(support[keys[a]] - support[keys[b]]).mean()
            assert diff > 0.3, (keys[a], keys[b], diff)
    # furious vs calm differs more for the support agent than for the receptionist
    def level_gap(c: dict[tuple[str, str], np.ndarray]) -> float:
        return float(np.abs(c["furious", "idle"] - c["calm", "idle"]).mean())

    assert level_gap(support) > 3 * level_gap(sheets["receptionist"])


def test_preview_rejects_an_invalid_persona(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("states:\n  idle:\n    lean: 2\n")
    res = subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "preview", "--behavior", str(bad), "--out",
         str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2 and "lean must be between" in res.stderr
    assert not (tmp_path / "x.png").exists()
