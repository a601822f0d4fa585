"""`avatar-agent train`: features, cross-validation, the shipped model and its card."""

from __future__ import annotations

import json
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avatar_agent.affect.card import model_card
from avatar_agent.affect.dataset import load_clips, speaker_baseline, windows_of
from avatar_agent.affect.evaluate import default_cache
from avatar_agent.affect.labels import discover
from avatar_agent.affect.metrics import ClipResult, build_report, headline
from avatar_agent.affect.model import AffectPredictor, AffectWindow, save_model
from avatar_agent.affect.report_plot import write_report_png
from avatar_agent.affect.train import (
    SHORT_BASELINE_CLIPS,
    TrainOptions,
    cross_validate,
    final_fit,
    results_of,
)
from avatar_agent.perception.speech_embedding import WINDOW_SAMPLES, SpeechEncoder


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


def run_training(
    data: Path,
    out: Path,
    *,
    seed: int = 0,
    max_epochs: int = 60,
    cache: Path | None = None,
    workers: int = 2,
    cross_validation: bool = True,
) -> dict[str, Any]:
    if not data.is_dir():
        raise TrainRunError(f"{data}: not a folder")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    found, skipped = discover(data)
    if not found:
        raise TrainRunError(f"{data}: no clip with a RAVDESS, CREMA-D, EmoDB or MEAD name")
    t_start = time.perf_counter()
    with tqdm(total=len(found), unit="clip", desc="features") as bar:
        feats = load_clips(found, cache or default_cache(), workers=workers, progress=bar.update)
    clips = [c for c in feats if c.error is None]
    skipped += [{"file": str(c.path), "reason": str(c.error)} for c in feats if c.error]
    if len({c.label.speaker for c in clips}) < 5:
        raise TrainRunError(f"{data}: need clips of at least 5 speakers for a speaker split")
    opts = TrainOptions(seed=seed, max_epochs=max_epochs)
    out.mkdir(parents=True, exist_ok=True)

    cv: dict[str, Any] = {}
    cv_ravdess: dict[str, Any] = {}
    short: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    folds: list[dict[str, Any]] = []
    if cross_validation:
        with tqdm(total=None, desc="cross-validation", bar_format="{desc}: {elapsed}") as bar:
            oof, folds = cross_validate(clips, opts, lambda m: bar.set_description_str(m))
        cv, cv_ravdess = _reports(results_of([c for c, _, _ in oof], [p for _, p, _ in oof]),
                                  skipped)
        short = _reports(results_of([c for c, _, _ in oof], [p for _, _, p in oof]), [])
        (out / "cv_report.json").write_text(json.dumps(cv, indent=1))
        write_report_png(cv, out / "cv_report.png")
        tqdm.write("cross-validation: " + headline(cv))
        tqdm.write("RAVDESS speech:   " + headline(cv_ravdess))
        tqdm.write(f"{SHORT_BASELINE_CLIPS}-clip baseline: " + headline(short[0]))

    with tqdm(total=None, desc="final model", bar_format="{desc}: {elapsed}") as bar:
        net, final = final_fit(clips, opts, progress=lambda m: bar.set_description_str(m))
    train_seconds = time.perf_counter() - t_start
    n_params = sum(p.numel() for p in net.parameters())
    meta: dict[str, Any] = {
        "parameters": n_params,
        "options": asdict(opts),
        "train_seconds": train_seconds,
        "device": f"CPU ({platform.processor() or platform.machine()}, "
                  f"{torch.get_num_threads()} threads)",
        "summary": {
            "cv_uar": cv.get("uar"), "cv_arousal_balanced_accuracy":
            cv.get("arousal_balanced_accuracy"), "cv_anger_auc": cv.get("anger_auc"),
            "cv_uar_ravdess": cv_ravdess.get("uar"),
        },
        "short_baseline": {
            "clips": SHORT_BASELINE_CLIPS,
            "uar": short[0].get("uar"), "arousal_balanced_accuracy":
            short[0].get("arousal_balanced_accuracy"), "anger_auc": short[0].get("anger_auc"),
            "uar_ravdess": short[1].get("uar"),
        } if cross_validation else None,
    }
    hparams = {"hidden": opts.hidden, "dropout": opts.dropout, "stats": opts.stats,
               "speech": opts.speech}
    model_path = out / "affect.pt"
    save_model(model_path, net, hparams, meta)
    predictor = AffectPredictor.load(model_path, "cpu")
    sample = clips[0]
    window = windows_of(sample, speaker_baseline([sample]))[-1]
    if window.has_voice or window.has_face:
        meta["cpu_ms_batch1"] = cpu_latency_ms(predictor, window)
    if opts.speech:
        meta["speech_ms_window"] = speech_latency_ms(SpeechEncoder.load())
    save_model(model_path, net, hparams, meta)
    if cross_validation:
        card = model_card(clips, skipped, cv, cv_ravdess, folds, final, meta)
        (out / "MODEL_CARD.md").write_text(card)
    tqdm.write(f"wrote {model_path} ({n_params:,} parameters, {train_seconds:.0f} s)")
    return {"cv": cv, "cv_ravdess": cv_ravdess, "final": final, "meta": meta}
