"""The model card written next to the weights: data, split, parameters, figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from avatar_agent.affect.dataset import ClipFeatures
from avatar_agent.affect.labels import EMOTIONS

TARGETS = {
    "arousal_balanced_accuracy": 0.90,
    "anger_auc": 0.92,
    "uar_ravdess": 0.68,
}


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _verdict(value: Any, target: float) -> str:
    if value is None:
        return "n/a"
    return "met" if value >= target else "**not met**"


def _short_baseline(short: dict[str, Any] | None) -> list[str]:
    if not short:
        return []
    return [
        f"With a baseline from only {short['clips']} other clips of each held-out speaker "
        "(some 6-7 s of recording, about what the first seconds of a call give) instead of "
        f"all their clips: arousal BA {_f(short['arousal_balanced_accuracy'])}, anger AUC "
        f"{_f(short['anger_auc'])}, UAR RAVDESS speech {_f(short['uar_ravdess'])}, UAR all "
        f"corpora {_f(short['uar'])}.",
        "",
    ]


def model_card(
    clips: Sequence[ClipFeatures],
    skipped: Sequence[dict[str, str]],
    cv: dict[str, Any],
    cv_ravdess: dict[str, Any],
    folds: Sequence[dict[str, Any]],
    final: dict[str, Any],
    meta: dict[str, Any],
) -> str:
    corpora = Counter(c.label.corpus for c in clips)
    modal = Counter(
        "voice+face" if c.voice is not None and c.face is not None
        else "voice" if c.voice is not None else "face"
        for c in clips
    )
    speakers = {c.label.speaker for c in clips}
    classes = Counter(c.label.raw_label for c in clips)
    rows = [
        ("Arousal balanced accuracy (all held-out clips)",
         cv["arousal_balanced_accuracy"], TARGETS["arousal_balanced_accuracy"]),
        ("Anger-vs-rest ROC-AUC (all held-out clips)", cv["anger_auc"], TARGETS["anger_auc"]),
        ("8-class UAR, RAVDESS speech", cv_ravdess["uar"], TARGETS["uar_ravdess"]),
    ]
    lines = [
        "# Affect model card",
        "",
        "Written by `avatar-agent train`; the weights in `affect.pt` are the ones that run "
        "produced.",
        "",
        "## Model",
        f"- {meta['parameters']:,} parameters: 1-D convolutions over 2 s of voice rows "
        "(32 log-mel bands, F0, voicing, energy every 10 ms) and face rows (28 face-mesh "
        "features and a presence flag every 100 ms), each read as z-scores against the "
        "speaker's own baseline, pooled over time, masked when a modality is missing, fused."
        + (" Beside the convolutions, the mean and spread of every voice column over the "
           "voiced frames (per-speaker z-scored functionals) go straight to the fusion layer."
           if meta["options"].get("stats") else "")
        + (" The speech embedding of the same 2 s (the first 3 blocks of Whisper base's "
           "encoder, MIT licence, frozen: mean and spread of their 512 channels over time) "
           "goes through one layer to the fusion layer, read as it is and against the mean "
           "embedding of the speaker's earlier speech; training leaves it out of "
           "one window in five, as the first seconds of a call have none."
           if meta["options"].get("speech") else ""),
        *(["- Training masks one random span of up to 0.3 s and up to 4 mel bands of each "
           "voice window (SpecAugment), so no single moment or band can carry a decision."]
          if meta["options"].get("augment") else []),
        f"- Outputs: probabilities over {', '.join(EMOTIONS)}; arousal 0..1; valence -1..1; "
        "anger index = 100 x P(angry).",
        f"- CPU inference at batch 1: {meta.get('cpu_ms_batch1', 'n/a')} ms per window "
        "(target <= 5 ms)."
        + (f" The speech embedding it reads costs {meta['speech_ms_window']} ms per 2 s "
           "window on one CPU thread; a call computes one a second while the customer "
           "speaks, in the analysis pool, as it does the face mesh."
           if meta.get("speech_ms_window") is not None else ""),
        "",
        "## Data",
        f"- {len(clips)} clips from {len(speakers)} speakers: "
        + ", ".join(f"{k} {v}" for k, v in sorted(corpora.items()))
        + "; by modality " + ", ".join(f"{k} {v}" for k, v in sorted(modal.items())) + ".",
        "- Labels: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())) + ". EmoDB "
        "boredom and MEAD contempt train arousal/valence only (no class among the 8).",
        f"- {len(skipped)} files skipped: "
        + ("; ".join(f"{s['file']} ({s['reason']})" for s in skipped[:5]) or "none")
        + (" ..." if len(skipped) > 5 else ""),
        "",
        "## Split (speaker-independent)",
        "- Speakers, never clips, are dealt into 5 folds (each corpus round-robin). For each "
        "fold a model trains on three folds, stops early on the fourth and scores the fifth; "
        "every figure below is on clips whose speaker that model never heard or saw.",
        "- A speaker's baseline is the mean and spread of all their clips' voiced frames and "
        "face frames, and the mean of their speech embeddings; in training it is drawn from "
        "a random subset of the speaker's clips.",
        "",
        "| fold | test speakers | clips | best epoch | UAR | arousal BA | anger AUC | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in folds:
        t = f["test"]
        lines.append(
            f"| {f['fold']} | {len(f['test_speakers'])} | {f['n_test']} | {f['best_epoch']} | "
            f"{_f(t['uar'])} | {_f(t['arousal_ba'])} | {_f(t['anger_auc'])} | {f['seconds']} |"
        )
    lines += [
        "",
        "## Figures (pooled out-of-fold predictions)",
        "",
        "| figure | value | target | |",
        "|---|---|---|---|",
    ]
    for name, value, target in rows:
        lines.append(f"| {name} | {_f(value)} | {target:.2f} | {_verdict(value, target)} |")
    lines += [
        f"| 8-class UAR, all corpora | {_f(cv['uar'])} | | |",
        f"| Arousal BA, RAVDESS | {_f(cv_ravdess['arousal_balanced_accuracy'])} | | |",
        f"| Anger AUC, RAVDESS | {_f(cv_ravdess['anger_auc'])} | | |",
        "",
        *_short_baseline(meta.get("short_baseline")),
        "Per-class recall (all corpora): "
        + ", ".join(f"{k} {_f(v)}" for k, v in cv["per_class_recall"].items()) + ".",
        "",
        "## Shipped weights",
        f"- Trained on {final['n_train']} clips; early stopping on {final['n_val']} clips of "
        f"{len(final['val_speakers'])} held-out speakers, best epoch {final['best_epoch']} of "
        f"{final['epochs_run']}; on those speakers: UAR {_f(final['val']['uar'])}, arousal BA "
        f"{_f(final['val']['arousal_ba'])}, anger AUC {_f(final['val']['anger_auc'])}.",
        f"- Hyper-parameters: {meta['options']}.",
        f"- Training time: {meta['train_seconds']:.0f} s on {meta['device']} "
        f"(cross-validation included), seed {meta['options']['seed']}.",
        "",
        "## Limits",
        "- Acted emotions, read English and German sentences; real customers are subtler.",
        "- Face data is small (MEAD and one RAVDESS actor); the face branch is weak on its own.",
        "- Licences of the training data: RAVDESS CC BY-NC-SA 4.0, EmoDB free for research, "
        "MEAD research terms. The weights inherit these terms: not for commercial use.",
    ]
    return "\n".join(lines) + "\n"
