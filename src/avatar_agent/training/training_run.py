"""`avatar-agent train`: features, cross-validation, the shipped model and its card."""

from __future__ import annotations

import json
import pickle
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avatar_agent.affect.labels import discover, one_per_recording
from avatar_agent.affect.model import AffectWindow
from avatar_agent.affect.predictor import AffectPredictor, save_model
from avatar_agent.core.config import Config
from avatar_agent.perception.speech_embedding import WINDOW_SAMPLES, SpeechEncoder
from avatar_agent.training.call_metrics import call_headline, summarize
from avatar_agent.training.calls import CallResult
from avatar_agent.training.card import model_card
from avatar_agent.training.crossval import cross_validate, final_fit
from avatar_agent.training.dataset import (
    CALM_REFERENCE_CLIPS,
    ClipFeatures,
    load_clips,
    reference_of,
    windows_of,
)
from avatar_agent.training.evaluate import default_cache
from avatar_agent.training.metrics import ClipResult, build_report, headline
from avatar_agent.training.policy import as_dict, choose, with_policy
from avatar_agent.training.report_plot import write_report_png
from avatar_agent.training.train import TrainOptions, results_of


class TrainRunError(Exception):
    """Training cannot start; the message is one line for the user."""


def _median_ms(fn: Callable[[], object], n: int, warmup: int) -> float:
    """Median time of `fn` on the CPU, with one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * float(np.median(times))


def cpu_latency_ms(predictor: AffectPredictor, window: AffectWindow, n: int = 200) -> float:
    """Median time of one batch-1 forward pass on the CPU, with one thread."""
    return round(_median_ms(lambda: predictor.predict([window]), n, warmup=10), 2)


def speech_latency_ms(encoder: SpeechEncoder, n: int = 20) -> float:
    """Median time of one speech embedding (a 2 s window) on the CPU, with one thread."""
    window = np.random.default_rng(0).normal(0.0, 0.05, WINDOW_SAMPLES).astype(np.float32)
    return round(_median_ms(lambda: encoder.embed(window), n, warmup=1), 1)


def _reports(
    results: list[ClipResult], skipped: list[dict[str, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report over all clips, and over RAVDESS speech (audio-only) alone."""
    rav = [r for r in results if r.label.corpus == "ravdess" and r.label.modality ==
           "audio-only"]
    return build_report(results, skipped), build_report(rav, [])


def _escalation_figures(section: dict[str, Any]) -> dict[str, Any]:
    a, c = section["angry_first"], section["calm_only"]
    return {"share_within_10s": a["share_within_10s"], "median_s": a["median_s"],
            "never": a["never"], "n_speakers": a["n_speakers"],
            "calm_escalations": c["escalations"], "calm_hours": c["hours"]}


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report.get(k) for k in ("n_clips", "uar", "arousal_balanced_accuracy",
                                       "anger_auc")}


def run_training(
    data: Path,
    out: Path,
    *,
    seed: int = 0,
    max_epochs: int = TrainOptions.max_epochs,
    cache: Path | None = None,
    workers: int = 2,
    cross_validation: bool = True,
    cfg: Config | None = None,
    save_calls: Path | None = None,
    save_folds: Path | None = None,
    members: int = TrainOptions.members,
    jobs: int = 1,
) -> dict[str, Any]:
    """``members``: networks in the ensemble; ``jobs``: members trained at once
    (forked processes, one thread each).
    ``save_calls``: where to pickle every fold's validation and test call traces
    (anger index and level per tick), for studying escalation policies offline.
    ``save_folds``: a folder for each fold's model (``fold{k}.pt``, with its validation
    and test speakers), to replay its calls under other call-path settings."""
    if not data.is_dir():
        raise TrainRunError(f"{data}: not a folder")
    cfg = cfg or Config()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    found, skipped = discover(data)
    found, copies = one_per_recording(found)
    skipped += copies
    if not found:
        raise TrainRunError(f"{data}: no labelled clip (known file names or a labels.csv)")
    t_start = time.perf_counter()
    with tqdm(total=len(found), unit="clip", desc="features") as bar:
        feats = load_clips(found, cache or default_cache(), workers=workers, progress=bar.update)
    clips = [c for c in feats if c.error is None]
    skipped += [{"file": str(c.path), "reason": str(c.error)} for c in feats if c.error]
    if len({c.label.speaker for c in clips}) < 5:
        raise TrainRunError(f"{data}: need clips of at least 5 speakers for a speaker split")
    opts = TrainOptions(seed=seed, max_epochs=max_epochs, members=members)
    out.mkdir(parents=True, exist_ok=True)

    cv: dict[str, Any] = {}
    cv_ravdess: dict[str, Any] = {}
    calm: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    folds: list[dict[str, Any]] = []
    calls: dict[str, Any] = {}
    if cross_validation:
        with tqdm(total=None, desc="cross-validation", bar_format="{desc}: {elapsed}") as bar:
            outs = cross_validate(clips, opts, cfg, lambda m: bar.set_description_str(m),
                                  jobs=jobs, save_folds=save_folds)
        test = [c for f in outs for c in f.clips]
        folds = [f.summary for f in outs]
        cv, cv_ravdess = _reports(results_of(test, [p for f in outs for p in f.alone]),
                                  skipped)
        calm = _reports(results_of(test, [p for f in outs for p in f.calm]), [])
        calls = summarize([r for f in outs for r in f.calls])
        # what the shipped config should use: chosen on every fold's validation calls
        val_calls = [r for f in outs for r in f.val_calls]
        shipped_policy = choose(val_calls, cfg.escalation)
        calls["escalation_policy"] = {
            "chosen_on": "validation speakers' calls of every fold (never test calls)",
            "per_fold": [f.summary["escalation"] for f in outs],
            "shipped": as_dict(shipped_policy),
            # the same test calls with the thresholds the shipped config uses
            "shipped_on_test": _escalation_figures(summarize(with_policy(
                [r for f in outs for r in f.calls], shipped_policy))["overall"]),
            # and on the calls it was chosen on: what a change to training is judged by
            "shipped_on_validation": _escalation_figures(summarize(with_policy(
                val_calls, shipped_policy))["overall"]),
        }
        if save_calls is not None:
            traces = [{"fold": i, "val": [_trace(r) for r in f.val_calls],
                       "test": [_trace(r) for r in f.calls]} for i, f in enumerate(outs)]
            save_calls.write_bytes(pickle.dumps(traces))
        cv["protocol"] = "clip"
        cv["folds"] = folds  # each fold's settings, figures and validation curves
        cv["calls"] = calls
        cv["calm_reference"] = {"all": _figures(calm[0]), "ravdess": _figures(calm[1])}
        (out / "cv_report.json").write_text(json.dumps(cv, indent=1))
        write_report_png(cv, out / "cv_report.png")
        tqdm.write("calls:            " + call_headline(calls["overall"]))
        tqdm.write("clips, no ref:    " + headline(cv))
        tqdm.write(f"clips, {CALM_REFERENCE_CLIPS} calm clips: " + headline(calm[0]))

    with tqdm(total=None, desc="final model", bar_format="{desc}: {elapsed}") as bar:
        net, final = final_fit(clips, opts, cfg, progress=lambda m: bar.set_description_str(m),
                               jobs=jobs)
    train_seconds = time.perf_counter() - t_start
    n_params = sum(p.numel() for p in net.parameters())
    overall = calls.get("overall", {})
    meta: dict[str, Any] = {
        "parameters": n_params,
        "members": len(net.members),
        "member_calibration": final["members"],
        "anger_scaling": final["anger_scaling"],
        "options": asdict(opts),
        "train_seconds": train_seconds,
        "temperature": final["temperature"],
        "face_temperature": final["face_temperature"],
        "arousal_shift": final["arousal_shift"],
        "device": f"CPU ({platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} threads)",
        "summary": {
            "cv_calls_share_escalated_within_10s":
                overall.get("angry_first", {}).get("share_within_10s"),
            "cv_calls_median_escalation_s": overall.get("angry_first", {}).get("median_s"),
            "cv_calls_calm_escalations": overall.get("calm_only", {}).get("escalations"),
            "cv_calls_uar": overall.get("per_clip_causal", {}).get("uar"),
            "cv_calls_arousal_balanced_accuracy":
                overall.get("per_clip_causal", {}).get("arousal_balanced_accuracy"),
            "cv_calls_anger_auc": overall.get("per_clip_causal", {}).get("anger_auc"),
            "cv_calls_ece": overall.get("calibration", {}).get("ece"),
            "cv_uar": cv.get("uar"), "cv_arousal_balanced_accuracy":
            cv.get("arousal_balanced_accuracy"), "cv_anger_auc": cv.get("anger_auc"),
            "cv_uar_ravdess": cv_ravdess.get("uar"),
        },
        "calm_reference": {
            "clips": CALM_REFERENCE_CLIPS, **_figures(calm[0]),
            "uar_ravdess": calm[1].get("uar"),
        } if cross_validation else None,
    }
    hparams = {"hidden": opts.hidden, "dropout": opts.dropout}
    model_path = out / "affect.pt"
    save_model(model_path, net, hparams, meta)
    predictor = AffectPredictor.load(model_path, "cpu")
    window = _latency_window(clips)
    if window is not None:
        meta["cpu_ms_batch1"] = cpu_latency_ms(predictor, window)
    meta["speech_ms_window"] = speech_latency_ms(SpeechEncoder.load())
    save_model(model_path, net, hparams, meta)
    if cross_validation:
        card = model_card(clips, skipped, cv, cv_ravdess, folds, final, meta)
        (out / "MODEL_CARD.md").write_text(card)
    tqdm.write(f"wrote {model_path} ({n_params:,} parameters, {train_seconds:.0f} s)")
    return {"cv": cv, "cv_ravdess": cv_ravdess, "final": final, "meta": meta}


def _trace(r: CallResult) -> CallResult:
    """A call's trace without its per-clip references, which are large."""
    return replace(r, refs={}, clip_outputs={})


def _latency_window(clips: list[ClipFeatures]) -> AffectWindow | None:
    """The costliest window a call sends: voice, face and speech, with a reference."""
    both = [c for c in clips if c.voice is not None and c.face is not None]
    sample = both[0] if both else clips[0]
    wins = windows_of(sample, reference_of([sample]))
    return wins[-1] if wins else None
