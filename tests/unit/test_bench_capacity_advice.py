"""The capacity benchmark's closing advice: which budget admits the calls that held."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_capacity",
                                                  ROOT / "scripts" / "bench_capacity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(k: int, held: int, refused: int = 0, server: str = "full") -> dict[str, object]:
    return {"server": server, "calls": k, "placed": k - refused, "held": held,
            "refused": refused}


def test_the_budget_admits_the_most_calls_that_held_before_a_larger_k_dropped_frames() -> None:
    advice = _bench().budget_advice
    rows = [_row(1, 1), _row(2, 2), _row(3, 0), _row(4, 0), _row(4, 4, server="floor")]
    said = advice(rows, 2.0, 0.85)
    assert "held 2 full call(s) and not 3" in said
    assert "server.call_cores: 0.68 admits 2" in said


def test_calls_the_budget_refused_are_no_evidence_of_a_limit() -> None:
    advice = _bench().budget_advice
    said = advice([_row(2, 2), _row(3, 2, refused=1)], 2.0, 0.85)
    assert "call_cores:" not in said and "--call-cores 0" in said
    assert advice([_row(1, 0)], 2.0, 0.85) == ""  # nothing held: no budget to give
