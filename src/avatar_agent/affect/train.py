"""Train the affect model on labelled clips, speaker-independently.

Speakers (never clips) are dealt into 5 folds. Cross-validation trains one model per
fold on three folds, stops early on the fourth and predicts the fifth, so every clip
is scored by a model that never heard or saw its speaker: those are the figures in
the model card. The shipped model trains on four folds and stops early on the fifth.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from avatar_agent.affect.dataset import (
    Baselines,
    ClipFeatures,
    speaker_baseline,
    speaker_bases,
    window_at,
    windows_of,
)
from avatar_agent.affect.features import N_MELS
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.metrics import ClipResult, build_report
from avatar_agent.affect.model import AffectNet, AffectWindow, prepare

log = logging.getLogger(__name__)

N_FOLDS = 5
SHORT_BASELINE_CLIPS = 3
SPEECH_DROP = 0.2  # share of training windows without the embedding, as a call's first 2 s
AROUSAL_TARGET = {"high": 1.0, "low": 0.0}
VALENCE_TARGET = {
    "neutral": 0.0, "calm": 0.3, "happy": 0.8, "sad": -0.6, "angry": -0.7,
    "fearful": -0.6, "disgust": -0.7, "surprised": 0.2, "boredom": -0.3, "contempt": -0.5,
}


@dataclass
class TrainOptions:
    seed: int = 0
    max_epochs: int = 60
    patience: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    hidden: int = 96
    dropout: float = 0.3
    stats: bool = True
    augment: bool = True
    speech: bool = True


def assign_folds(speakers: Sequence[str], n_folds: int = N_FOLDS) -> dict[str, int]:
    """Deal each corpus's speakers round-robin into folds, so every fold mixes corpora."""
    by_corpus: dict[str, list[str]] = defaultdict(list)
    for s in sorted(set(speakers)):
        by_corpus[s.split(":", 1)[0]].append(s)
    folds: dict[str, int] = {}
    offset = 0
    for corpus in sorted(by_corpus):
        for i, s in enumerate(by_corpus[corpus]):
            folds[s] = (i + offset) % n_folds
        offset += len(by_corpus[corpus])
    return folds


class _Sampler:
    """Random 2 s crops of training clips, each read against a baseline built from a
    random subset of the same speaker's clips (as a call's first minute would be)."""

    def __init__(self, clips: Sequence[ClipFeatures], rng: random.Random) -> None:
        self.clips = list(clips)
        self.rng = rng
        self.by_speaker: dict[str, list[ClipFeatures]] = defaultdict(list)
        for c in self.clips:
            self.by_speaker[c.label.speaker].append(c)

    def baseline(self, speaker: str) -> Baselines:
        pool = self.by_speaker[speaker]
        k = self.rng.randint(min(3, len(pool)), len(pool))
        return speaker_baseline(self.rng.sample(pool, k))

    def window(self, clip: ClipFeatures, base: Baselines) -> AffectWindow:
        dur = clip.duration
        end = self.rng.uniform(min(dur, 2.0), dur) if dur > 2.0 else dur
        w = window_at(clip, base, end)
        if w.voice is not None and w.face is not None and self.rng.random() < 0.3:
            # both modalities present: sometimes drop one, as a call without camera would
            if self.rng.random() >= 0.5:
                return AffectWindow(None, None, w.face, w.face_base)
            w = replace(w, face=None, face_base=None)
        if w.speech is not None and self.rng.random() < SPEECH_DROP:
            w = replace(w, speech=None, speech_base=None)
        return w

    def epoch(self, batch_size: int) -> list[tuple[list[AffectWindow], list[ClipFeatures]]]:
        bases: dict[str, Baselines] = {}
        order = self.clips[:]
        self.rng.shuffle(order)
        batches = []
        for i in range(0, len(order), batch_size):
            chunk = order[i : i + batch_size]
            wins = []
            kept = []
            for c in chunk:
                s = c.label.speaker
                if s not in bases:
                    bases[s] = self.baseline(s)
                w = self.window(c, bases[s])
                if w.has_voice or w.has_face:
                    wins.append(w)
                    kept.append(c)
            if wins:
                batches.append((wins, kept))
        return batches


def spec_augment(voice: torch.Tensor, gen: torch.Generator) -> None:
    """Mask, in place, one span of up to 0.3 s and one run of up to 4 mel bands per
    window of z-scored voice rows (B, T, D), so the model cannot lean on one moment or
    one band of a voice it has heard; a masked value reads as the speaker's baseline."""
    b, t, _ = voice.shape
    for i in range(b):
        width = int(torch.randint(0, 31, (1,), generator=gen))
        start = int(torch.randint(0, t - width + 1, (1,), generator=gen))
        voice[i, start : start + width, :] = 0.0
        bands = int(torch.randint(0, 5, (1,), generator=gen))
        low = int(torch.randint(0, N_MELS - bands + 1, (1,), generator=gen))
        voice[i, :, low : low + bands] = 0.0


def _targets(clips: Sequence[ClipFeatures]) -> dict[str, torch.Tensor]:
    cls = [EMOTIONS.index(c.label.emotion) if c.label.emotion in EMOTIONS else -100
           for c in clips]
    aro = [AROUSAL_TARGET.get(c.label.arousal or "", math.nan) for c in clips]
    val = [VALENCE_TARGET.get(c.label.raw_label, VALENCE_TARGET.get(c.label.emotion or "",
                                                                     math.nan))
           for c in clips]
    return {
        "cls": torch.tensor(cls, dtype=torch.long),
        "aro": torch.tensor(aro, dtype=torch.float32),
        "val": torch.tensor(val, dtype=torch.float32),
    }


def _class_weights(clips: Sequence[ClipFeatures]) -> torch.Tensor:
    counts = np.ones(len(EMOTIONS))
    for c in clips:
        if c.label.emotion in EMOTIONS:
            counts[EMOTIONS.index(c.label.emotion)] += 1
    w = counts.sum() / (len(EMOTIONS) * counts)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def short_bases(
    clips: Sequence[ClipFeatures], rng: random.Random, k: int = SHORT_BASELINE_CLIPS
) -> list[Baselines]:
    """Per clip, a baseline from `k` other clips of the same speaker, never the clip
    itself: some 6-7 s of recording, about what the first seconds of a call give."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(clips):
        by[c.label.speaker].append(i)
    out = []
    for i, c in enumerate(clips):
        others = [j for j in by[c.label.speaker] if j != i]
        pick = rng.sample(others, min(k, len(others)))
        out.append(speaker_baseline([clips[j] for j in pick]))
    return out


def predict_clips(
    net: AffectNet,
    clips: Sequence[ClipFeatures],
    bases: Mapping[str, Baselines] | Sequence[Baselines],
) -> list[tuple[npt.NDArray[np.float64], float, float]]:
    """(mean probabilities, arousal, valence) per clip over its 2 s windows, 1 s apart;
    `bases` holds a baseline per speaker, or one per clip."""
    net.eval()
    out = []
    with torch.inference_mode():
        for i, c in enumerate(clips):
            base = bases[c.label.speaker] if isinstance(bases, Mapping) else bases[i]
            wins = [w for w in windows_of(c, base) if w.has_voice or w.has_face]
            if not wins:
                out.append((np.full(len(EMOTIONS), 1 / len(EMOTIONS)), 0.5, 0.0))
                continue
            logits, aro, val = net(**prepare(wins))
            probs = torch.softmax(logits, 1).mean(0).numpy().astype(np.float64)
            out.append((probs, float(aro.mean()), float(val.mean())))
    return out


def results_of(
    clips: Sequence[ClipFeatures], preds: Sequence[tuple[Any, float, float]]
) -> list[ClipResult]:
    return [ClipResult.from_probs(str(c.path), c.label, probs, arousal, valence)
            for c, (probs, arousal, valence) in zip(clips, preds, strict=True)]


def _score(clips: Sequence[ClipFeatures], preds: Sequence[Any]) -> dict[str, float]:
    """The three figures early stopping and the fold table use, from the full report."""
    report = build_report(results_of(clips, preds), [])
    auc = report["anger_auc"]
    return {"uar": report["uar"] or 0.0,
            "arousal_ba": report["arousal_balanced_accuracy"] or 0.0,
            "anger_auc": auc if auc is not None else 0.5}


def fit(
    train: Sequence[ClipFeatures],
    val: Sequence[ClipFeatures],
    opts: TrainOptions,
    progress: Callable[[str], None] | None = None,
) -> tuple[AffectNet, dict[str, Any]]:
    """Train with early stopping on `val` (speakers not in `train`); returns the best net."""
    torch.manual_seed(opts.seed)
    rng = random.Random(opts.seed)
    net = AffectNet(hidden=opts.hidden, dropout=opts.dropout, stats=opts.stats,
                    speech=opts.speech)
    embeddings = [c.speech for c in train if c.speech is not None]
    if opts.speech and embeddings:
        net.set_speech_scale(torch.from_numpy(np.concatenate(embeddings)))
    gen = torch.Generator().manual_seed(opts.seed)
    optim = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, opts.max_epochs)
    ce = nn.CrossEntropyLoss(weight=_class_weights(train), ignore_index=-100,
                             label_smoothing=0.05)
    sampler = _Sampler(train, rng)
    val_bases = speaker_bases(val)
    best: tuple[float, int, dict[str, Any], dict[str, float]] | None = None
    history = []
    for epoch in range(opts.max_epochs):
        net.train()
        total = 0.0
        for wins, clips in sampler.epoch(opts.batch_size):
            t = _targets(clips)
            inputs = prepare(wins)
            if opts.augment:
                spec_augment(inputs["voice"], gen)
            logits, aro, val_out = net(**inputs)
            loss = ce(logits, t["cls"]) if (t["cls"] >= 0).any() else logits.sum() * 0
            ok = ~torch.isnan(t["aro"])
            if ok.any():
                loss = loss + 0.5 * nn.functional.binary_cross_entropy(aro[ok], t["aro"][ok])
            ok = ~torch.isnan(t["val"])
            if ok.any():
                loss = loss + 0.5 * nn.functional.mse_loss(val_out[ok], t["val"][ok])
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(wins)
        sched.step()
        scores = _score(val, predict_clips(net, val, val_bases))
        # one number to stop on: the three figures that matter, equally weighted
        combined = (scores["uar"] + scores["arousal_ba"] + scores["anger_auc"]) / 3
        history.append({"epoch": epoch + 1, "loss": total / max(1, len(train)), **scores})
        if progress is not None:
            progress(f"epoch {epoch + 1}: loss {total / max(1, len(train)):.3f} "
                     f"val uar {scores['uar']:.3f} ba {scores['arousal_ba']:.3f} "
                     f"auc {scores['anger_auc']:.3f}")
        if best is None or combined > best[0]:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = (combined, epoch + 1, state, scores)
        elif epoch + 1 - best[1] >= opts.patience:
            break
    assert best is not None
    net.load_state_dict(best[2])
    net.eval()
    return net, {"best_epoch": best[1], "val": best[3], "epochs_run": len(history),
                 "history": history}


def _prefixed(
    progress: Callable[[str], None] | None, prefix: str
) -> Callable[[str], None] | None:
    if progress is None:
        return None
    return lambda m: progress(prefix + m)


def cross_validate(
    clips: Sequence[ClipFeatures],
    opts: TrainOptions,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[tuple[ClipFeatures, Any, Any]], list[dict[str, Any]]]:
    """Out-of-fold predictions for every clip, and a summary per fold.

    Each clip is predicted twice: against its speaker's baseline from all their clips,
    and against a short one from a few of their other clips (:func:`short_bases`).
    """
    folds = assign_folds([c.label.speaker for c in clips])
    rng = random.Random(opts.seed)
    oof: list[tuple[ClipFeatures, Any, Any]] = []
    summary = []
    for k in range(N_FOLDS):
        v = (k + 1) % N_FOLDS
        test = [c for c in clips if folds[c.label.speaker] == k]
        val = [c for c in clips if folds[c.label.speaker] == v]
        train = [c for c in clips if folds[c.label.speaker] not in (k, v)]
        t0 = time.perf_counter()
        net, info = fit(train, val, opts, _prefixed(progress, f"fold {k + 1}/{N_FOLDS} "))
        preds = predict_clips(net, test, speaker_bases(test))
        short = predict_clips(net, test, short_bases(test, rng))
        oof.extend(zip(test, preds, short, strict=True))
        summary.append({
            "fold": k + 1, "test_speakers": sorted({c.label.speaker for c in test}),
            "n_test": len(test), "best_epoch": info["best_epoch"],
            "seconds": round(time.perf_counter() - t0, 1), "test": _score(test, preds),
        })
    return oof, summary


def final_fit(
    clips: Sequence[ClipFeatures],
    opts: TrainOptions,
    val_fold: int = N_FOLDS - 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[AffectNet, dict[str, Any]]:
    folds = assign_folds([c.label.speaker for c in clips])
    val = [c for c in clips if folds[c.label.speaker] == val_fold]
    train = [c for c in clips if folds[c.label.speaker] != val_fold]
    net, info = fit(train, val, opts, progress)
    info["val_speakers"] = sorted({c.label.speaker for c in val})
    info["n_train"], info["n_val"] = len(train), len(val)
    return net, info

