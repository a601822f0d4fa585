from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from avatar_agent.affect.labels import EMOTIONS, ClipLabel, parse_label
from avatar_agent.training.metrics import (
    ClipResult,
    balanced_accuracy,
    build_report,
    confusion,
    headline,
    recall_per_class,
    roc_auc,
    uar,
)
from avatar_agent.training.report_plot import write_report_png

TRUE = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "b", "a", "b", "c", "c"]


def test_confusion_by_hand() -> None:
    assert confusion(TRUE, PRED, ["a", "b", "c"]) == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # Class order follows `classes`, not the data.
    assert confusion(TRUE, PRED, ["c", "b", "a"]) == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]
    assert confusion([], [], ["a"]) == [[0]]


def test_confusion_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="not in classes"):
        confusion(["a", "z"], ["a", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="not in classes"):
        confusion(["a"], ["z"], ["a", "b"])
    with pytest.raises(ValueError):
        confusion(["a"], [], ["a"])


def test_recall_and_uar_by_hand() -> None:
    assert recall_per_class(TRUE, PRED, ["a", "b", "c", "d"]) == {
        "a": pytest.approx(2 / 3),
        "b": 0.5,
        "c": 1.0,
        "d": None,
    }
    # A class that never occurs in the truth does not drag UAR down...
    assert uar(TRUE, PRED, ["a", "b", "c"]) == pytest.approx(13 / 18)
    assert uar(TRUE, PRED, ["a", "b", "c", "d"]) == pytest.approx(13 / 18)
    # ...but predicting it is still a miss for the true class.
    assert uar(["a", "a"], ["d", "a"], ["a", "d"]) == 0.5
    with pytest.raises(ValueError):
        uar([], [], ["a"])


def test_balanced_accuracy_by_hand() -> None:
    true = [True, True, True, False, False]
    pred = [True, False, True, False, True]
    assert balanced_accuracy(true, pred) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert balanced_accuracy([True, True, False], [True, True, True]) == 0.5
    # Only one class present: its recall alone.
    assert balanced_accuracy([True, True], [True, False]) == 0.5
    assert balanced_accuracy([], []) is None


def _pairwise_auc(labels: list[bool], scores: list[float]) -> float:
    pos = [s for y, s in zip(labels, scores, strict=True) if y]
    neg = [s for y, s in zip(labels, scores, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(12))
def test_roc_auc_matches_pairwise_count_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    labels = [bool(x) for x in rng.random(n) < rng.uniform(0.1, 0.9)]
    if all(labels) or not any(labels):
        labels[0] = not labels[0]
    # Few distinct values so that many scores tie, within and across classes.
    scores = [float(x) for x in rng.integers(0, 6, size=n) + 0.5 * np.asarray(labels)]
    if seed % 2:
        scores = [float(x) for x in rng.normal(size=n)]
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)


def test_roc_auc_edge_cases() -> None:
    assert roc_auc([True, False], [1.0, 0.0]) == 1.0
    assert roc_auc([True, False], [0.0, 1.0]) == 0.0
    assert roc_auc([True, False, True, False], [3.0, 3.0, 3.0, 3.0]) == 0.5
    assert roc_auc([True, True], [0.1, 0.9]) is None
    assert roc_auc([False, False], [0.1, 0.9]) is None
    assert roc_auc([], []) is None
    with pytest.raises(ValueError):
        roc_auc([True, False], [1.0])
    with pytest.raises(ValueError):
        roc_auc([True, False], [1.0, float("nan")])


# --- report ----------------------------------------------------------------------------


def _label(name: str) -> ClipLabel:
    label = parse_label(Path(name))
    assert label is not None
    return label


def _clip(name: str, predicted: str, arousal: float, anger: float) -> ClipResult:
    probs = {e: 0.02 for e in EMOTIONS}
    probs[predicted] = 0.86
    return ClipResult(name, _label(name), probs, arousal, 0.0, anger)


def _ravdess(emotion: str, actor: int, rep: int = 1) -> str:
    return f"03-01-{EMOTIONS.index(emotion) + 1:02d}-01-01-{rep:02d}-{actor:02d}.flac"


def test_build_report_by_hand() -> None:
    records = [
        _clip(_ravdess("angry", 1), "angry", 0.9, 90.0),
        _clip(_ravdess("angry", 2), "happy", 0.8, 40.0),
        _clip(_ravdess("sad", 1), "sad", 0.2, 10.0),
        _clip(_ravdess("sad", 2), "neutral", 0.6, 50.0),
        _clip(_ravdess("disgust", 1), "angry", 0.7, 60.0),  # no arousal group
        _clip("03a01La.flac", "calm", 0.1, 5.0),  # EmoDB boredom: low arousal, no class
        _clip("M030_front_contempt_level3_001.mp4", "disgust", 0.4, 20.0),  # nothing
    ]
    skipped = [{"file": "x/bbaf2n.mpg", "reason": "no label"}]
    report = build_report(records, skipped)

    assert report["n_clips"] == 7
    assert report["n_emotion_clips"] == 5
    assert report["n_arousal_clips"] == 5
    assert report["classes"] == list(EMOTIONS)
    assert report["uar_classes"] == ["sad", "angry", "disgust"]
    assert report["uar_is_8_class"] is False
    assert report["uar"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert report["accuracy"] == pytest.approx(2 / 5)
    # Arousal truth: high, high, low, low, low(boredom); predicted >= 0.5: H H L H L.
    assert report["arousal_balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    # Angry scores 90, 40 against 10, 50, 60: 90 beats all three, 40 beats one.
    assert report["anger_auc"] == pytest.approx(4 / 6)
    matrix = report["confusion"]["matrix"]
    assert report["confusion"]["classes"] == list(EMOTIONS)
    angry, happy, sad, neutral = (EMOTIONS.index(e) for e in ("angry", "happy", "sad", "neutral"))
    assert matrix[angry][angry] == 1 and matrix[angry][happy] == 1
    assert matrix[sad][sad] == 1 and matrix[sad][neutral] == 1
    assert sum(map(sum, matrix)) == 5
    assert report["per_class_recall"]["angry"] == 0.5
    assert report["per_class_recall"]["calm"] is None

    speakers = report["per_speaker"]
    assert sorted(speakers) == ["emodb:03", "mead:M030", "ravdess:01", "ravdess:02"]
    one = speakers["ravdess:01"]
    assert set(one) == {"n_clips", "uar", "arousal_balanced_accuracy", "anger_auc", "accuracy"}
    assert one["n_clips"] == 3 and one["accuracy"] == pytest.approx(2 / 3)
    assert one["anger_auc"] == 1.0
    assert speakers["ravdess:02"]["accuracy"] == 0.0
    # A speaker with no clip among the 8 classes has no UAR, accuracy or anger AUC.
    mead = speakers["mead:M030"]
    assert mead["uar"] is None and mead["accuracy"] is None and mead["anger_auc"] is None
    assert mead["arousal_balanced_accuracy"] is None
    assert speakers["emodb:03"]["arousal_balanced_accuracy"] == 1.0

    rows = report["per_clip"]
    assert len(rows) == 7
    wanted = {"file", "speaker", "true", "predicted", "probs", "arousal", "valence", "anger_index"}
    assert wanted <= set(rows[0])
    assert rows[5]["true"] is None and rows[5]["raw_label"] == "boredom"
    assert rows[1]["predicted"] == "happy"
    assert report["skipped"] == skipped
    json.dumps(report, allow_nan=False)


def test_build_report_all_eight_classes_and_numpy_inputs() -> None:
    rng = np.random.default_rng(0)
    records = []
    for actor in (1, 2):
        for emotion in EMOTIONS:
            if emotion == "neutral":
                continue  # neutral has only normal intensity, added below
            # Model code hands over numpy scalars; the report must still be plain JSON.
            p32: Any = rng.dirichlet(np.ones(8)).astype(np.float32)
            probs = dict(zip(EMOTIONS, p32, strict=True))
            name = f"03-01-{EMOTIONS.index(emotion) + 1:02d}-02-01-01-{actor:02d}.wav"
            scalars: Any = (np.float64(0.5), np.float32(-0.2), np.int64(7))
            records.append(ClipResult(name, _label(name), probs, *scalars))
        name = _ravdess("neutral", actor)
        records.append(_clip(name, "neutral", 0.3, 1.0))
    report = build_report(records, [])
    assert report["uar_is_8_class"] is True
    assert report["uar_classes"] == list(EMOTIONS)
    assert isinstance(report["uar"], float)
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["n_clips"] == 16


def test_build_report_empty() -> None:
    report = build_report([], [])
    assert report["n_clips"] == 0
    assert report["uar"] is None and report["anger_auc"] is None
    assert report["arousal_balanced_accuracy"] is None
    assert report["per_speaker"] == {} and report["per_clip"] == []
    json.dumps(report, allow_nan=False)
    assert "n/a" in headline(report)


def test_clip_result_prediction_and_validation() -> None:
    name = _ravdess("calm", 3)
    tied = {e: 0.125 for e in EMOTIONS}
    # Ties go to the earlier class, so the prediction does not depend on dict order.
    assert ClipResult(name, _label(name), tied, 0.5, 0.0, 0.0).predicted == "neutral"
    with pytest.raises(ValueError, match="probs"):
        ClipResult(name, _label(name), {"angry": 1.0}, 0.5, 0.0, 0.0)


# --- plot ------------------------------------------------------------------------------


def test_report_png(tmp_path: Path) -> None:
    records = [
        _clip(_ravdess(emotion, actor, rep), predicted, 0.5, 50.0)
        for actor in (1, 2)
        for rep in (1, 2)
        for emotion, predicted in zip(EMOTIONS[1:], EMOTIONS[1:][::-1], strict=True)
    ] + [_clip(_ravdess("neutral", 1), "neutral", 0.2, 0.0)]
    report = build_report(records, [])
    out = tmp_path / "nested" / "report.png"
    write_report_png(report, out)
    assert out.stat().st_size > 10_000
    image = imread(out)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[1] > image.shape[0] > 400
    # Not a blank canvas.
    assert float(np.std(image[..., :3])) > 0.05


def test_report_png_without_data(tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    write_report_png(build_report([], []), out)
    assert imread(out).shape[0] > 0
