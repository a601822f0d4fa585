"""The shipped affect model and `avatar-agent evaluate`, on real clips, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatar_agent.affect.predictor import AffectPredictor
from avatar_agent.core.config import PROJECT_ROOT, Config
from avatar_agent.runtime import model_path
from avatar_agent.training.dataset import extract
from avatar_agent.training.selection import validation_calls, validation_score


@pytest.fixture(scope="module")
def predictor() -> AffectPredictor:
    return AffectPredictor.load(model_path(Config()), "cpu")


@pytest.fixture(scope="module")
def held_out_actor(held_out_speakers: set[str]) -> str:
    """A RAVDESS actor the shipped weights never trained on."""
    return sorted(s for s in held_out_speakers if s.startswith("ravdess:"))[0].split(":")[1]


def test_shipped_weights_rank_anger_above_neutral_for_an_unseen_actor_without_a_reference(
    predictor: AffectPredictor, data_dir: Path, held_out_actor: str
) -> None:
    """The model's first answer, before it knows the caller at all."""
    from dataclasses import replace

    from avatar_agent.affect.labels import parse_label
    from avatar_agent.perception.audio import load_audio
    from avatar_agent.perception.speech_embedding import SpeechEncoder
    from avatar_agent.training.dataset import ClipFeatures, extract_speech, window_at

    encoder = SpeechEncoder.load()
    actor = data_dir / "speech_emotion" / "ravdess_full" / f"Actor_{held_out_actor}"
    clips = sorted(actor.glob("*.flac"))

    def anger(path: Path, with_speech: bool) -> float:
        label = parse_label(path)
        assert label is not None
        rows = extract(path)[0]
        clip = ClipFeatures(path, label, rows, None, None,
                            *extract_speech(load_audio(path)[0], encoder))
        window = window_at(clip, clip.duration)  # no reference: a call's first words
        assert window.has_speech
        if not with_speech:  # as in a call's first 2 s, before an embedding exists
            window = replace(window, speech=None)
        return predictor.predict([window])[0].anger_index

    angry_clips = [p for p in clips if p.name.startswith("03-01-05-02")]
    neutral_clips = [p for p in clips if p.name.startswith("03-01-01-01")]
    assert len(angry_clips) == 4 and len(neutral_clips) == 4
    for with_speech in (True, False):
        angry = [anger(p, with_speech) for p in angry_clips]
        neutral = [anger(p, with_speech) for p in neutral_clips]
        print(f"actor {held_out_actor}, speech embedding {with_speech}: anger index "
              f"angry {np.round(angry, 1)}, neutral {np.round(neutral, 1)}")
        assert min(angry) > max(neutral)
        assert max(neutral) < 40  # a neutral voice alone never reads as dissatisfied


def test_evaluate_writes_every_key_and_lists_unreadable_clips(
    tmp_path: Path, data_dir: Path, held_out_actor: str
) -> None:
    clips = tmp_path / "clips" / "nested"
    clips.mkdir(parents=True)
    actor = data_dir / "speech_emotion" / "ravdess" / f"Actor_{held_out_actor}"
    for p in sorted(actor.glob("*.flac"))[:24]:
        (clips / p.name).symlink_to(p)
    for name in ("M030_front_angry_level3_001.mp4", "M030_front_neutral_level1_001.mp4"):
        (clips / name).symlink_to(data_dir / "face_video" / "mead" / name)
    bad = f"03-01-05-01-01-01-{held_out_actor}.wav"
    (clips / bad).write_bytes(b"RIFF garbage, not audio")
    (clips / "notes.wav").write_bytes(b"")  # no label in the name
    out = tmp_path / "report.json"
    res = subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "evaluate", "--data", str(tmp_path / "clips"),
         "--out", str(out), "--no-cache", "--device", "cpu", "--protocol", "clip"],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    for key in ("n_clips", "uar", "arousal_balanced_accuracy", "anger_auc", "confusion",
                "per_speaker", "per_clip", "skipped"):
        assert key in report, key
    assert report["n_clips"] == 26
    assert report["protocol"] == "clip" and "calls" not in report
    assert {f"ravdess:{held_out_actor}", "mead:M030"} <= set(report["per_speaker"])
    skipped = {Path(s["file"]).name: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {bad, "notes.wav"}
    assert all(reason for reason in skipped.values())
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    clip = report["per_clip"][0]
    assert {"file", "true", "probs", "anger_index"} <= set(clip)


def test_evaluate_on_a_folder_without_labelled_clips_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bbaf2n.mpg").write_bytes(b"")
    res = subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "evaluate", "--data", str(tmp_path),
         "--out", str(tmp_path / "r.json"), "--no-cache"],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "no labelled clip" in " ".join(res.stderr.split())


def test_train_on_a_small_speaker_split_writes_weights_card_and_report(
    tmp_path: Path, data_dir: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    ravdess = data_dir / "speech_emotion" / "ravdess"
    for actor in ("01", "02", "03", "04", "05", "06"):
        for p in sorted((ravdess / f"Actor_{actor}").glob("*.flac"))[::6]:
            (clips / p.name).symlink_to(p)
    out = tmp_path / "models"
    res = subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "train", "--data", str(clips),
         "--out", str(out), "--max-epochs", "2", "--cache", str(tmp_path / "cache"),
         "--members", "2", "--jobs", "2", "--save-folds", str(tmp_path / "folds")],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    predictor = AffectPredictor.load(out / "affect.pt", "cpu")
    assert predictor.meta["parameters"] > 10_000
    assert predictor.members == predictor.meta["members"] == 2
    card = (out / "MODEL_CARD.md").read_text()
    assert "An ensemble of 2 networks" in card
    scale, shift = predictor.meta["anger_scaling"]  # fitted on the held-out speakers' calls
    assert float(predictor.net.anger_scale) == scale and float(predictor.net.anger_shift) == shift
    assert "Platt scaling" in card
    assert "speaker-independent" in card and "| 5 |" in card  # five folds listed
    assert card.index("call protocol") < card.index("## Model")  # it leads with calls
    report = json.loads((out / "cv_report.json").read_text())
    assert report["n_clips"] == len(list(clips.iterdir()))
    calls = report["calls"]["overall"]
    assert calls["angry_first"]["n_speakers"] == 6 and calls["calm_only"]["n_calls"] == 6
    assert calls["per_clip_causal"]["n_clips"] == report["n_clips"]
    # what a change to training is judged by: validation curves and validation calls
    assert [len(f["val_history"]) for f in report["folds"]] == [2] * 5
    score, values = validation_score(report)
    assert len(values) == 10 and 0.0 < score < 1.0
    on_val = validation_calls(report)
    assert on_val is not None and on_val["n_speakers"] > 0
    assert (out / "cv_report.png").stat().st_size > 20_000
    # each fold's model is kept, and replaying its calls gives what training reported
    folds = sorted((tmp_path / "folds").glob("fold*.pt"))
    assert len(folds) == 5
    replayed = tmp_path / "replay.json"
    res = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "replay_calls.py"), "--folds",
         str(tmp_path / "folds"), "--data", str(clips), "--cache", str(tmp_path / "cache"),
         "--variant", "base=", "--variant", "slower=smoothing_s:3", "--test", "base",
         "--out", str(replayed)],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    figures = json.loads(replayed.read_text())
    assert figures["slower"]["overrides"] == {"smoothing_s": 3.0}
    nested = figures["base"]["validation_nested"]
    assert nested["angry_starts"] == 6  # every speaker is a validation speaker once
    test = figures["base"]["test"]["angry_first"]
    assert test["n_speakers"] == 6
    assert test["share_within_10s"] == calls["angry_first"]["share_within_10s"]
    assert test["per_speaker"] == calls["angry_first"]["per_speaker"]
    # a setting the config does not know is an error, not a variant that changes nothing
    res = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "replay_calls.py"), "--folds",
         str(tmp_path / "folds"), "--data", str(clips), "--variant", "typo=smothing_s:2"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode != 0 and "smothing_s" in res.stderr
    assert "Traceback" not in res.stderr
