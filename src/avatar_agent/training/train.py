"""Train one affect network on labelled clips, speaker-independently.

Speakers (never clips) are dealt into 5 folds (:func:`assign_folds`); :func:`fit`
trains a network on some speakers, stops early and calibrates on others. The folds'
use is in :mod:`avatar_agent.training.crossval`.
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectNet, AffectWindow, prepare
from avatar_agent.affect.reference import NO_REFERENCE, Reference
from avatar_agent.perception.features import VOICE_DIM, VOICED_COL
from avatar_agent.perception.speech_embedding import EMBED_DIM
from avatar_agent.training.augment import spec_augment, vary_gain
from avatar_agent.training.calibration import calibrate
from avatar_agent.training.dataset import (
    AROUSAL_TARGET,
    CALM_LABELS,
    ClipFeatures,
    calm_references,
    reference_of,
    window_at,
    windows_of,
)
from avatar_agent.training.metrics import ClipResult, build_report
from avatar_agent.training.selection import combined

log = logging.getLogger(__name__)

N_FOLDS = 5
SPEECH_DROP = 0.2  # share of training windows without the embedding, as a call's first 2 s
VALENCE_TARGET = {
    "neutral": 0.0, "calm": 0.3, "happy": 0.8, "sad": -0.6, "angry": -0.7,
    "fearful": -0.6, "disgust": -0.7, "surprised": 0.2, "boredom": -0.3, "contempt": -0.5,
}


@dataclass
class TrainOptions:
    seed: int = 0
    max_epochs: int = 40
    patience: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    hidden: int = 96
    dropout: float = 0.3
    augment: bool = True
    members: int = 4  # networks averaged (training/members.py), fixed by the inference budget


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


REF_NONE, REF_CALM, REF_MIXED, REF_SAME = "none", "calm", "mixed", "same"
# How often training reads a window against each kind of reference: a call has none
# at first, then (if all goes well) one from calm speech; but a reference may also
# have learned from mixed speech, or from the very emotion being read (a caller the
# model misread as calm), and the model must not be fooled by it.
REFERENCE_MIX = ((REF_NONE, 0.4), (REF_CALM, 0.3), (REF_MIXED, 0.15), (REF_SAME, 0.15))
EARLY_SHARE = 0.25  # share of training windows that end in a clip's first 2 s
EARLY_S = 0.5


class _Sampler:
    """Random 2 s crops of training clips, each read against a reference drawn the
    ways a call can hold one (:data:`REFERENCE_MIX`), from other clips of the speaker."""

    def __init__(self, clips: Sequence[ClipFeatures], rng: random.Random) -> None:
        self.clips = list(clips)
        self.rng = rng
        self.by_speaker: dict[str, list[ClipFeatures]] = defaultdict(list)
        for c in self.clips:
            self.by_speaker[c.label.speaker].append(c)

    def reference(self, clip: ClipFeatures) -> Reference:
        kind = self.rng.choices([k for k, _ in REFERENCE_MIX],
                                [w for _, w in REFERENCE_MIX])[0]
        others = [c for c in self.by_speaker[clip.label.speaker] if c is not clip]
        if kind == REF_CALM:
            pool = [c for c in others if c.label.emotion in CALM_LABELS]
        elif kind == REF_SAME:
            pool = [c for c in others if c.label.emotion == clip.label.emotion]
        elif kind == REF_MIXED:
            pool = others
        else:
            return NO_REFERENCE
        if not pool:
            return NO_REFERENCE
        k = self.rng.randint(1, min(6, len(pool)))
        return reference_of(self.rng.sample(pool, k))

    def window(self, clip: ClipFeatures) -> AffectWindow:
        dur = clip.duration
        if dur > EARLY_S and self.rng.random() < EARLY_SHARE:
            # a call's first moments: a little speech after silence, no embedding yet
            end = self.rng.uniform(EARLY_S, min(dur, 2.0))
        else:
            end = self.rng.uniform(min(dur, 2.0), dur) if dur > 2.0 else dur
        w = window_at(clip, end, self.reference(clip))
        if w.voice is not None and w.face is not None and self.rng.random() < 0.3:
            # both modalities present: sometimes drop one, as a call without camera would
            if self.rng.random() >= 0.5:
                return replace(w, voice=None, speech=None)
            w = replace(w, face=None)
        if w.speech is not None and self.rng.random() < SPEECH_DROP:
            w = replace(w, speech=None)
        return w

    def epoch(self, batch_size: int) -> list[tuple[list[AffectWindow], list[ClipFeatures]]]:
        order = self.clips[:]
        self.rng.shuffle(order)
        batches = []
        for i in range(0, len(order), batch_size):
            wins, kept = [], []
            for c in order[i : i + batch_size]:
                w = self.window(c)
                if w.has_voice or w.has_face:
                    wins.append(w)
                    kept.append(c)
            if wins:
                batches.append((wins, kept))
        return batches


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


Prediction = tuple[npt.NDArray[np.float64], float, float]


def predict_windows(net: nn.Module, windows: Sequence[AffectWindow],
                    batch: int = 256) -> tuple[npt.NDArray[np.float64], ...]:
    """Calibrated probabilities (N, 8), arousal (N,), valence (N,) and the first answer's
    uncalibrated logits (N, 8) of many windows."""
    net.eval()
    probs, aro, val, first = [], [], [], []
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            logits, a, v, l0 = net(**prepare(windows[i : i + batch]))
            probs.append(torch.softmax(logits, 1).double().numpy())
            aro.append(a.double().numpy())
            val.append(v.double().numpy())
            first.append(l0.double().numpy())
    if not probs:
        empty = np.zeros((0, len(EMOTIONS)))
        return empty, np.zeros(0), np.zeros(0), empty
    return (np.concatenate(probs), np.concatenate(aro), np.concatenate(val),
            np.concatenate(first))


def predict_clips(
    net: nn.Module, clips: Sequence[ClipFeatures], refs: Sequence[Reference] | None = None,
) -> list[Prediction]:
    """(mean probabilities, arousal, valence) per clip over its 2 s windows, 1 s apart,
    each read against the clip's reference in `refs` (none by default)."""
    wins: list[AffectWindow] = []
    owner: list[int] = []
    for i, c in enumerate(clips):
        for w in windows_of(c, refs[i] if refs is not None else NO_REFERENCE):
            wins.append(w)
            owner.append(i)
    probs, aro, val, _ = predict_windows(net, wins)
    idx = np.asarray(owner)
    out: list[Prediction] = []
    for i in range(len(clips)):
        sel = idx == i
        if not sel.any():
            out.append((np.full(len(EMOTIONS), 1 / len(EMOTIONS)), 0.5, 0.0))
        else:
            out.append((probs[sel].mean(0), float(aro[sel].mean()), float(val[sel].mean())))
    return out


def results_of(
    clips: Sequence[ClipFeatures], preds: Sequence[tuple[Any, float, float]]
) -> list[ClipResult]:
    return [ClipResult.from_probs(str(c.path), c.label, probs, arousal, valence)
            for c, (probs, arousal, valence) in zip(clips, preds, strict=True)]


def clip_scores(clips: Sequence[ClipFeatures], preds: Sequence[Any]) -> dict[str, float]:
    """The three figures early stopping and the fold table use, from the full report."""
    report = build_report(results_of(clips, preds), [])
    auc = report["anger_auc"]
    return {"uar": report["uar"] or 0.0,
            "arousal_ba": report["arousal_balanced_accuracy"] or 0.0,
            "anger_auc": auc if auc is not None else 0.5}


def _population(net: AffectNet, train: Sequence[ClipFeatures], rng: random.Random) -> None:
    rows = [c.voice[c.voice[:, VOICED_COL] > 0.5] for c in train if c.voice is not None]
    sample = np.concatenate(rows) if rows else np.zeros((1, VOICE_DIM), np.float32)
    if len(sample) > 200_000:
        sample = sample[np.sort(np.random.default_rng(rng.randrange(1 << 30)).choice(
            len(sample), 200_000, replace=False))]
    embeddings = [c.speech for c in train if c.speech is not None]
    emb = np.concatenate(embeddings) if embeddings else np.zeros((2, EMBED_DIM), np.float32)
    net.set_population(torch.from_numpy(sample), torch.from_numpy(emb))


def fit(
    train: Sequence[ClipFeatures],
    val: Sequence[ClipFeatures],
    opts: TrainOptions,
    progress: Callable[[str], None] | None = None,
) -> tuple[AffectNet, dict[str, Any]]:
    """Train with early stopping on `val` (speakers not in `train`), then calibrate on
    `val`; returns the best net."""
    torch.manual_seed(opts.seed)
    rng = random.Random(opts.seed)
    net = AffectNet(hidden=opts.hidden, dropout=opts.dropout)
    _population(net, train, rng)
    gen = torch.Generator().manual_seed(opts.seed)
    optim = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, opts.max_epochs)
    ce = nn.CrossEntropyLoss(weight=_class_weights(train), ignore_index=-100,
                             label_smoothing=0.05)
    sampler = _Sampler(train, rng)
    val_refs = calm_references(val, random.Random(opts.seed))
    best: tuple[float, int, dict[str, Any], dict[str, float]] | None = None
    history = []
    for epoch in range(opts.max_epochs):
        net.train()
        total = 0.0
        for wins, clips in sampler.epoch(opts.batch_size):
            t = _targets(clips)
            inputs = prepare(wins)
            if opts.augment:
                vary_gain(inputs["voice"], gen)
                spec_augment(inputs["voice"], gen)
            logits, aro, val_out, first = net(**inputs)
            has = (t["cls"] >= 0).any()
            # the refined answer, and the first answer on its own: it must hold alone
            loss = ce(logits, t["cls"]) + 0.5 * ce(first, t["cls"]) if has else logits.sum() * 0
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
        # what stops training: the figures without a reference and with a calm one
        alone = clip_scores(val, predict_clips(net, val))
        calm = clip_scores(val, predict_clips(net, val, val_refs))
        scores = {k: (alone[k] + calm[k]) / 2 for k in alone}
        history.append({"epoch": epoch + 1, "loss": total / max(1, len(train)), **scores})
        if progress is not None:
            progress(f"epoch {epoch + 1}: loss {total / max(1, len(train)):.3f} "
                     f"val uar {scores['uar']:.3f} ba {scores['arousal_ba']:.3f} "
                     f"auc {scores['anger_auc']:.3f}")
        if best is None or combined(scores) > best[0]:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = (combined(scores), epoch + 1, state, scores)
        elif epoch + 1 - best[1] >= opts.patience:
            break
    assert best is not None
    net.load_state_dict(best[2])
    net.eval()
    temps = calibrate(net, val, opts.seed)
    return net, {"best_epoch": best[1], "val": best[3], "epochs_run": len(history),
                 "history": history, **temps}
