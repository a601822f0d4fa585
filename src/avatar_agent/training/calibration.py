"""Calibration of a trained affect model on held-out speakers (never the test fold).

One temperature for the emotion logits of windows with a voice, one (never sharper)
for face-only windows, and the arousal's decision point: each fitted on the
validation speakers' windows, read with no reference and with a calm one, as calls
read them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectNet, AffectWindow, prepare
from avatar_agent.training.dataset import (
    AROUSAL_TARGET,
    ClipFeatures,
    calm_references,
    windows_of,
)


def fit_temperature(logits: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]) -> float:
    """The temperature that minimises the negative log-likelihood of held-out windows
    (a one-parameter calibration that keeps every ranking, so AUC and UAR stay put)."""
    keep = labels >= 0
    if keep.sum() < 20:
        return 1.0
    x, y = logits[keep], labels[keep]
    best = (math.inf, 1.0)
    for temp in np.exp(np.linspace(np.log(0.3), np.log(5.0), 60)):
        z = x / temp
        z = z - z.max(axis=1, keepdims=True)
        nll = float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())
        best = min(best, (nll, float(temp)))
    return best[1]


def fit_arousal_shift(logits: npt.NDArray[np.float64], high: npt.NDArray[np.float64]) -> float:
    """The shift of the arousal logit that maximises the balanced accuracy of
    "aroused" (arousal >= 0.5) on held-out windows; 0 when there is too little to tell."""
    keep = ~np.isnan(high)
    x, y = logits[keep], high[keep] > 0.5
    if y.sum() < 10 or (~y).sum() < 10:
        return 0.0
    best = (-1.0, 0.0)
    for shift in np.linspace(-2.0, 2.0, 81):
        pred = x - shift >= 0
        ba = 0.5 * (pred[y].mean() + (~pred[~y]).mean())
        # ties go to the smallest shift, so an uninformative fit changes nothing
        best = max(best, (float(ba) - 1e-9 * abs(shift), float(shift)))
    return best[1]


def fit_anger_scaling(scores: npt.ArrayLike, angry: npt.ArrayLike) -> tuple[float, float]:
    """Platt scaling of anger indices (0-100): the (scale, shift) of their log-odds
    that minimise the negative log-likelihood of "angry" on held-out windows, on a
    grid; (1, 0), no change, when there are too few of either kind to tell."""
    p = np.clip(np.asarray(scores, np.float64) / 100.0, 1e-6, 1 - 1e-6)
    y = np.asarray(angry, bool)
    if y.sum() < 20 or (~y).sum() < 20:
        return 1.0, 0.0
    z = np.log(p / (1 - p))
    best = (math.inf, 1.0, 0.0)
    for scale in np.linspace(0.2, 2.0, 46):
        for shift in np.linspace(-3.0, 3.0, 61):
            q = np.clip(1.0 / (1.0 + np.exp(-(scale * z + shift))), 1e-9, 1 - 1e-9)
            nll = float(-np.mean(np.where(y, np.log(q), np.log(1 - q))))
            # ties go to no change
            nll += 1e-9 * (abs(scale - 1.0) + abs(shift))
            best = min(best, (nll, float(scale), float(shift)))
    return best[1], best[2]


def _validation_windows(
    val: Sequence[ClipFeatures], rng: random.Random
) -> tuple[list[AffectWindow], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Windows of the validation speakers, with no reference and with a calm one; their
    class (-100 where none) and arousal target (NaN where none)."""
    wins: list[AffectWindow] = []
    labels: list[int] = []
    high: list[float] = []
    refs = calm_references(val, rng)
    for c, ref in zip(val, refs, strict=True):
        y = EMOTIONS.index(c.label.emotion) if c.label.emotion in EMOTIONS else -100
        a = AROUSAL_TARGET.get(c.label.arousal or "", math.nan)
        for w in [*windows_of(c), *windows_of(c, ref)]:
            wins.append(w)
            labels.append(y)
            high.append(a)
    return wins, np.asarray(labels, np.int64), np.asarray(high, np.float64)


def calibrate(net: AffectNet, val: Sequence[ClipFeatures], seed: int) -> dict[str, float]:
    """Fit the temperatures on the validation speakers' windows (never the test fold):
    one for windows with a voice, one for face-only windows; and the arousal's
    decision point."""
    wins, labels, high = _validation_windows(val, random.Random(seed))
    net.temperature.fill_(1.0)
    net.face_temperature.fill_(1.0)
    net.arousal_shift.fill_(0.0)
    if not wins:
        return {"temperature": 1.0, "face_temperature": 1.0, "arousal_shift": 0.0}
    net.eval()
    logits, arousal = [], []
    with torch.inference_mode():
        for i in range(0, len(wins), 256):
            out, aro, _, _ = net(**prepare(wins[i : i + 256]))
            logits.append(out.double().numpy())
            arousal.append(aro.double().numpy())
    all_logits = np.concatenate(logits)
    a = np.clip(np.concatenate(arousal), 1e-6, 1 - 1e-6)
    shift = fit_arousal_shift(np.log(a / (1 - a)), high)
    net.arousal_shift.fill_(shift)
    face_only = np.array([not w.has_voice for w in wins])
    t_voice = fit_temperature(all_logits[~face_only], labels[~face_only])
    # Face-only windows alone may raise a level only with high confidence: they get
    # their own temperature, never a sharper one than the voice's.
    t_face = max(t_voice, fit_temperature(all_logits[face_only], labels[face_only]))
    net.temperature.fill_(t_voice)
    net.face_temperature.fill_(t_face)
    return {"temperature": t_voice, "face_temperature": t_face, "arousal_shift": shift}
