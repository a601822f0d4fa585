"""`check-config` names the line of a knowledge file's problems; `serve` refuses one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BAD = "- id: a\n  questions: [hello]\n  answer: ''\n- id: b\n  answer: fine\n"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # wide enough that the console does not wrap a long temporary path
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "avatar_agent.cli", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)


def test_check_config_and_serve_refuse_a_bad_knowledge_file(tmp_path: Path) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text(BAD, encoding="utf-8")
    res = _cli("check-config", str(kb))
    assert res.returncode == 1
    assert f"{kb}:line 3: 0.answer: Value error, the answer is empty" in res.stderr
    assert f"{kb}:line 4: 1.questions: Field required" in res.stderr

    config = tmp_path / "config.yaml"
    config.write_text(f"knowledge:\n  path: {kb}\n", encoding="utf-8")
    res = _cli("serve", "--config", str(config), "--port", "1")
    assert res.returncode == 2 and "line 3" in res.stderr and "serving" not in res.stdout
