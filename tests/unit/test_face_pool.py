"""Face analysers kept between calls (`perception.face_pool`)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, cast

import pytest

from avatar_agent.perception.face import FaceAnalyzer
from avatar_agent.perception.face_pool import FaceAnalyzers
from tests.unit.test_face import frames


class _Analyzer:
    """What the pool asks of an analyser: reset and close, counted."""

    def __init__(self, broken: bool = False) -> None:
        self.resets = self.closes = 0
        self.broken = broken

    def reset(self) -> None:
        self.resets += 1
        if self.broken:
            raise RuntimeError("graph will not restart")

    def close(self) -> None:
        self.closes += 1


def _pool(keep: int, broken: bool = False) -> tuple[FaceAnalyzers, list[_Analyzer]]:
    built: list[_Analyzer] = []

    def build() -> FaceAnalyzer:
        built.append(_Analyzer(broken))
        return cast(FaceAnalyzer, built[-1])

    return FaceAnalyzers(build, keep), built


def test_an_analyser_given_back_is_reset_and_taken_again() -> None:
    pool, built = _pool(keep=2)
    a = pool.take()
    pool.give_back(a)
    assert built[0].resets == 1 and built[0].closes == 0 and pool.idle == 1
    assert pool.take() is a and pool.built == 1


def test_no_more_than_keep_are_kept_idle() -> None:
    pool, built = _pool(keep=2)
    taken = [pool.take() for _ in range(3)]  # three calls at once: three built
    for a in taken:
        pool.give_back(a)
    assert pool.built == 3 and pool.idle == 2 and pool.alive == 2
    assert [b.closes for b in built] == [0, 0, 1]
    pool.close()
    assert all(b.closes == 1 for b in built) and pool.alive == 0
    late = pool.take()  # a call still running at shutdown gives its analyser back after
    pool.give_back(late)
    assert cast(Any, late).closes == 1 and pool.idle == 0 and pool.alive == 0


def test_an_analyser_that_cannot_reset_is_closed_not_kept() -> None:
    pool, built = _pool(keep=2, broken=True)
    pool.give_back(pool.take())
    assert built[0].closes == 1 and pool.idle == 0


def test_a_reset_mesh_reads_the_next_stream_afresh(grid_clip: Path) -> None:
    """A real MediaPipe mesh: after a reset nothing of the last stream is left (its
    eye history, the face it tracked): it reads a new stream exactly as a new mesh."""
    clip = list(itertools.islice(frames(grid_clip), 12))
    with FaceAnalyzer() as kept, FaceAnalyzer() as fresh:
        for t, rgb in clip:
            kept.analyze(rgb, t)
        assert kept._ears  # the eye history of the first stream
        kept.reset()
        assert not kept._ears and kept._next_find is None
        for t, rgb in clip[:4]:
            a, b = kept.analyze(rgb, t), fresh.analyze(rgb, t)
            assert a.present and b.present
            assert a.vector() == pytest.approx(b.vector(), abs=1e-4)


def test_warming_builds_one_real_analyser_and_keeps_it() -> None:
    pool = FaceAnalyzers(FaceAnalyzer, keep=2)
    pool.warm()
    assert pool.built == 1 and pool.idle == 1 and pool.alive == 1
    pool.close()
    assert pool.alive == 0
