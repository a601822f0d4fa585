"""Train the affect model on labelled clips, speaker-independently.

Speakers (never clips) are dealt into 5 folds. Cross-validation trains one model per
fold on three folds, stops early and calibrates on the fourth and predicts the fifth,
clip by clip and as calls (:mod:`avatar_agent.training.calls`), so every figure comes
from a model that never heard or saw that speaker: those are the model card's
figures. The shipped model trains on four folds and stops early on the fifth.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectNet, AffectOutput, AffectWindow, prepare
from avatar_agent.affect.reference import NO_REFERENCE, Reference
from avatar_agent.core.config import Config, EscalationConfig
from avatar_agent.perception.features import ENERGY_COL, N_MELS, SILENCE_DB, VOICE_DIM, VOICED_COL
from avatar_agent.perception.speech_embedding import EMBED_DIM
from avatar_agent.training.calibration import calibrate
from avatar_agent.training.calls import CallResult, plan_calls, run_calls
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
from avatar_agent.training.policy import as_dict, choose, with_policy

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
GAIN_DB = 10.0  # training varies the level of each voice window by up to this
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


def vary_gain(voice: torch.Tensor, gen: torch.Generator) -> None:
    """Shift, in place, the level (mel bands and energy, dB) of each raw voice window by
    a random amount: microphones differ, and the first answer must not hang on one."""
    gain = (torch.rand(voice.shape[0], 1, generator=gen) * 2 - 1) * GAIN_DB
    live = voice[:, :, ENERGY_COL] > SILENCE_DB + 1
    voice[:, :, :N_MELS] += (gain * live)[:, :, None]
    voice[:, :, ENERGY_COL] += gain * live


def spec_augment(voice: torch.Tensor, gen: torch.Generator) -> None:
    """Mask, in place, one span of up to 0.3 s and one run of up to 4 mel bands per
    window of raw voice rows (B, T, D), so the model cannot lean on one moment or one
    band of a voice it has heard. A masked value is NaN, which the model reads as the
    mean it compares against; the voicing flags stay as they are."""
    b, t, _ = voice.shape
    for i in range(b):
        width = int(torch.randint(0, 31, (1,), generator=gen))
        start = int(torch.randint(0, t - width + 1, (1,), generator=gen))
        voice[i, start : start + width, :VOICED_COL] = math.nan
        voice[i, start : start + width, VOICED_COL + 1 :] = math.nan
        bands = int(torch.randint(0, 5, (1,), generator=gen))
        low = int(torch.randint(0, N_MELS - bands + 1, (1,), generator=gen))
        voice[i, :, low : low + bands] = math.nan


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


def predict_windows(net: AffectNet, windows: Sequence[AffectWindow],
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
    net: AffectNet, clips: Sequence[ClipFeatures], refs: Sequence[Reference] | None = None,
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


def _score(clips: Sequence[ClipFeatures], preds: Sequence[Any]) -> dict[str, float]:
    """The three figures early stopping and the fold table use, from the full report."""
    report = build_report(results_of(clips, preds), [])
    auc = report["anger_auc"]
    return {"uar": report["uar"] or 0.0,
            "arousal_ba": report["arousal_balanced_accuracy"] or 0.0,
            "anger_auc": auc if auc is not None else 0.5}


def _combined(scores: dict[str, float]) -> float:
    return (scores["uar"] + scores["arousal_ba"] + scores["anger_auc"]) / 3


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
        alone = _score(val, predict_clips(net, val))
        calm = _score(val, predict_clips(net, val, val_refs))
        scores = {k: (alone[k] + calm[k]) / 2 for k in alone}
        history.append({"epoch": epoch + 1, "loss": total / max(1, len(train)), **scores})
        if progress is not None:
            progress(f"epoch {epoch + 1}: loss {total / max(1, len(train)):.3f} "
                     f"val uar {scores['uar']:.3f} ba {scores['arousal_ba']:.3f} "
                     f"auc {scores['anger_auc']:.3f}")
        if best is None or _combined(scores) > best[0]:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = (_combined(scores), epoch + 1, state, scores)
        elif epoch + 1 - best[1] >= opts.patience:
            break
    assert best is not None
    net.load_state_dict(best[2])
    net.eval()
    temps = calibrate(net, val, opts.seed)
    return net, {"best_epoch": best[1], "val": best[3], "epochs_run": len(history),
                 "history": history, **temps}


def _prefixed(
    progress: Callable[[str], None] | None, prefix: str
) -> Callable[[str], None] | None:
    if progress is None:
        return None
    return lambda m: progress(prefix + m)


@dataclass
class FoldOutput:
    """What one cross-validation fold gives: per-clip predictions without a reference
    and with a calm one, the calls of its test speakers (escalations as the policy
    chosen on its validation speakers raises them) and of its validation speakers."""

    clips: list[ClipFeatures]
    alone: list[Prediction]
    calm: list[Prediction]
    calls: list[CallResult]
    val_calls: list[CallResult]
    policy: EscalationConfig
    summary: dict[str, Any]


def cross_validate(
    clips: Sequence[ClipFeatures],
    opts: TrainOptions,
    cfg: Config,
    progress: Callable[[str], None] | None = None,
) -> list[FoldOutput]:
    """Out-of-fold predictions for every clip and every test speaker's calls.

    Fold k tests on its speakers with a model trained on three other folds, stopped
    early and calibrated on fold k+1. The settings (`opts`) are fixed before it runs.
    """
    folds = assign_folds([c.label.speaker for c in clips])
    rng = random.Random(opts.seed)
    out = []
    for k in range(N_FOLDS):
        v = (k + 1) % N_FOLDS
        test = [c for c in clips if folds[c.label.speaker] == k]
        val = [c for c in clips if folds[c.label.speaker] == v]
        train = [c for c in clips if folds[c.label.speaker] not in (k, v)]
        t0 = time.perf_counter()
        net, info = fit(train, val, opts, _prefixed(progress, f"fold {k + 1}/{N_FOLDS} "))
        alone = predict_clips(net, test)
        calm = predict_clips(net, test, calm_references(test, rng))
        predict = net_predictor(net)
        # the escalation thresholds are chosen on the validation speakers' calls and
        # only then applied to the test speakers' (training/policy.py)
        val_calls = run_calls(predict, plan_calls(val, opts.seed), cfg)
        policy = choose(val_calls, cfg.escalation)
        calls = with_policy(run_calls(predict, plan_calls(test, opts.seed), cfg), policy)
        out.append(FoldOutput(test, alone, calm, calls, val_calls, policy, {
            "fold": k + 1, "test_speakers": sorted({c.label.speaker for c in test}),
            "n_test": len(test), "best_epoch": info["best_epoch"],
            "temperature": round(info["temperature"], 3),
            "escalation": as_dict(policy),
            "arousal_shift": round(info["arousal_shift"], 3),
            "seconds": round(time.perf_counter() - t0, 1), "test": _score(test, alone),
        }))
    return out


def net_predictor(net: AffectNet) -> Callable[[Sequence[AffectWindow]], list[AffectOutput]]:
    def predict(windows: Sequence[AffectWindow]) -> list[AffectOutput]:
        probs, aro, val, _ = predict_windows(net, windows)
        return [AffectOutput(float(aro[i]), float(val[i]), tuple(float(p) for p in probs[i]))
                for i in range(len(windows))]
    return predict


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
