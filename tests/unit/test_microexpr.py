"""Micro-expression bursts against a per-person baseline, driven frame by frame."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import av
import numpy as np
import pytest

from avatar_agent.perception.aus import AU_NAMES
from avatar_agent.perception.face import FaceAnalyzer, FaceFeatures
from avatar_agent.perception.microexpr import MicroExpression, MicroExpressionDetector

FPS = 30.0
DT = 1.0 / FPS
NOISE = 0.01  # inter-ocular units: about MediaPipe's frame-to-frame jitter
TARGET = "au12_lip_corner_puller"


def frame(t: float, aus: dict[str, float], present: bool = True) -> FaceFeatures:
    return FaceFeatures(t=t, present=present, eye_open=0.3, face_size=80.0,
                        au=MappingProxyType(aus))


def synthetic(
    seconds: float, seed: int, bursts: tuple[tuple[str, float, float, float], ...] = ()
) -> list[FaceFeatures]:
    """Gaussian jitter around per-AU offsets, plus boxcar bursts (kind, start, length, height)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, 0.5, len(AU_NAMES))
    out = []
    for i in range(round(seconds * FPS)):
        t = i * DT
        vals = offsets + rng.normal(0.0, NOISE, len(AU_NAMES))
        aus = dict(zip(AU_NAMES, vals.tolist(), strict=True))
        for kind, start, length, height in bursts:
            if start - 1e-9 <= t < start + length - 1e-9:
                aus[kind] += height
        out.append(frame(t, aus))
    return out


def run(det: MicroExpressionDetector, feats: list[FaceFeatures]) -> list[MicroExpression]:
    events: list[MicroExpression] = []
    for f in feats:
        events += det.update(f)
    return events


def test_short_burst_gives_one_event() -> None:
    events = run(MicroExpressionDetector(), synthetic(10.0, 1, ((TARGET, 6.0, 0.3, 0.08),)))
    assert len(events) == 1, events
    e = events[0]
    assert e.kind == TARGET
    assert abs(e.onset - 6.0) <= DT + 1e-9
    assert abs(e.duration - 0.3) <= DT + 1e-9
    assert e.peak > 5.0


def test_sustained_rise_is_not_a_micro_expression() -> None:
    feats = synthetic(12.0, 2, ((TARGET, 6.0, 1.5, 0.08),))
    assert run(MicroExpressionDetector(), feats) == []


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_gives_nothing(seed: int) -> None:
    assert run(MicroExpressionDetector(), synthetic(30.0, 10 + seed)) == []


def test_nothing_during_warm_up() -> None:
    det = MicroExpressionDetector(warmup_s=3.0)
    feats = synthetic(4.0, 3, ((TARGET, 1.0, 0.2, 0.2), (TARGET, 2.5, 0.2, 0.2)))
    for f in feats:
        events = det.update(f)
        if f.t < 3.0:
            assert events == [] and not det.warmed_up
    assert det.warmed_up


def test_burst_interrupted_by_lost_face_is_dropped() -> None:
    feats = synthetic(10.0, 4, ((TARGET, 6.0, 0.3, 0.08),))
    # The face disappears in the middle of the burst: we cannot know how it ended.
    feats = [frame(f.t, dict(f.au), present=not (6.1 <= f.t < 6.2)) for f in feats]
    assert run(MicroExpressionDetector(), feats) == []


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError):
        MicroExpressionDetector(z_on=1.0, z_off=2.0)


def test_burst_on_real_face_features(data_dir: Path) -> None:
    """Real MediaPipe jitter from a talking face, with one synthetic brow flash on top."""
    clip = data_dir / "talking_face" / "pexels" / "WolfgangLanger_Pexels.mp4"
    real: list[FaceFeatures] = []
    with FaceAnalyzer() as fa, av.open(str(clip)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i % 2 == 0 and fr.time is not None:
                real.append(fa.analyze(fr.to_ndarray(format="rgb24"), float(fr.time)))
                if fr.time > 12.0:
                    break
    assert sum(f.present for f in real) >= 0.95 * len(real)
    quiet = run(MicroExpressionDetector(), real)
    print("events on the untouched clip:", [(e.kind, round(e.onset, 2)) for e in quiet])
    kind = "au01_inner_brow_raise"
    start = 8.0
    spread = float(np.std([f.au[kind] for f in real if f.present]))
    flashed = []
    for f in real:
        aus = dict(f.au)
        if start <= f.t < start + 0.3:
            aus[kind] += 8 * spread
        flashed.append(FaceFeatures(t=f.t, present=f.present, au=MappingProxyType(aus)))
    events = [e for e in run(MicroExpressionDetector(), flashed) if e.kind == kind]
    baseline_events = [e for e in quiet if e.kind == kind]
    assert len(events) == len(baseline_events) + 1
    new = [e for e in events if e not in baseline_events]
    assert len(new) == 1 and abs(new[0].onset - start) < 0.1
    assert new[0].duration == pytest.approx(0.3, abs=0.1)
