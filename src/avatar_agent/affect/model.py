"""The affect model: 2 s of voice and face in, arousal, valence, emotions and anger out.

It is built to be right before it knows the caller, because support callers are
often upset from their first word:

* **First answer, speaker-independent.** 1-D convolutions over 200 voice rows (10 ms
  each: log-mel, pitch, voicing, energy) read against the *population* (the training
  speakers' mean and spread, stored in the weights), the voiced-frame functionals of
  the same rows, the speech embedding of the 2 s
  (:mod:`avatar_agent.perception.speech_embedding`), and the class probabilities of
  a face-expression network trained on many faces
  (:mod:`avatar_agent.perception.face_expression`). Nothing here needs the caller.
* **Refinement, weighted by evidence.** Where the call has a reference of this
  caller (:mod:`avatar_agent.affect.reference`, learned only from windows read as
  calm), the same rows read against it, the embedding against its mean and the face
  geometry against the caller's own face add a correction, scaled by the reference's
  weight: 0 without one, 1 with ten seconds of calm evidence.

A modality that is missing (no consent for video, camera off, not speaking) is
masked, so the same weights serve voice only, face only, or both. Emotion logits are
divided by a temperature fitted on held-out speakers (the aim: of windows with an
anger index near 70, about 70 % are angry; the model card's reliability plot shows how
near it gets). The arousal's decision point (0.5) is likewise set on held-out speakers.

**Face-only windows** (no voice: a silent customer on camera) take their emotions from
the face-expression network alone, its class probabilities averaged over the window's
frames with a face, under their own temperature, never sharper than the voice's. That
network learned from tens of thousands of faces; the fused model has seen only a
handful of faces, too few to read a stranger's (it left angry faces at an anger index
near 10). Arousal and valence still come from the fused model.

``anger_index`` = 100 x P(angry): 0 when the model sees no anger, 100 when it is sure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.reference import NO_REFERENCE, Reference
from avatar_agent.perception.face import EXPRESSION_CLASSES
from avatar_agent.perception.features import (
    EXPRESSION,
    FACE_DIM,
    FACE_FRAMES,
    GEOMETRY,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICED_COL,
)
from avatar_agent.perception.speech_embedding import EMBED_DIM

F32 = npt.NDArray[np.float32]
CLIP_Z = 6.0
N_GEOMETRY = GEOMETRY.stop - GEOMETRY.start
N_EXPRESSION = EXPRESSION.stop - EXPRESSION.start


@dataclass(frozen=True)
class AffectWindow:
    """One call's last 2 s as raw rows, and the caller's reference so far (if any)."""

    voice: F32 | None  # (200, VOICE_DIM)
    face: F32 | None  # (20, FACE_DIM)
    speech: F32 | None = None  # (EMBED_DIM,) speech embedding of the same 2 s
    ref: Reference = NO_REFERENCE

    @property
    def has_voice(self) -> bool:
        return self.voice is not None

    @property
    def has_speech(self) -> bool:
        return self.speech is not None

    @property
    def has_face(self) -> bool:
        return self.face is not None


@dataclass(frozen=True)
class AffectOutput:
    arousal: float  # 0 calm .. 1 highly aroused
    valence: float  # -1 negative .. 1 positive
    probs: tuple[float, ...]  # over EMOTIONS

    @property
    def anger_index(self) -> float:
        return 100.0 * self.probs[EMOTIONS.index("angry")]

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.probs))]

    def prob_dict(self) -> dict[str, float]:
        return dict(zip(EMOTIONS, self.probs, strict=True))


def validate_window(w: AffectWindow) -> None:
    """Raise ValueError for a window the model cannot read (wrong shape, NaN in a face)."""
    if not (w.has_voice or w.has_face):
        raise ValueError("the window has neither voice nor face")
    if w.voice is not None and w.voice.shape != (VOICE_FRAMES, VOICE_DIM):
        raise ValueError(f"voice rows must be {(VOICE_FRAMES, VOICE_DIM)}, got {w.voice.shape}")
    if w.face is not None:
        if w.face.shape != (FACE_FRAMES, FACE_DIM):
            raise ValueError(f"face rows must be {(FACE_FRAMES, FACE_DIM)}, got {w.face.shape}")
        if not np.isfinite(w.face).all():
            raise ValueError("face rows contain NaN or infinity")
    for base, dim in ((w.ref.voice, VOICE_DIM), (w.ref.face, FACE_DIM)):
        if base is not None and (base.mean.shape != (dim,) or not np.isfinite(base.mean).all()):
            raise ValueError("a reference has the wrong shape or is not finite")
    for vec in (w.speech, w.ref.speech):
        if vec is not None and (vec.shape != (EMBED_DIM,) or not np.isfinite(vec).all()):
            raise ValueError(f"a speech embedding must be {EMBED_DIM} finite values")


def _block(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.BatchNorm1d(c_out), nn.GELU()
    )


def zscore(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std, NaN (unvoiced pitch) read as the mean, clipped to +-6."""
    z = (x - mean) / std
    return torch.nan_to_num(z, nan=0.0, posinf=CLIP_Z, neginf=-CLIP_Z).clamp(-CLIP_Z, CLIP_Z)


def voiced_stats(voice: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Mean and spread of every voice column over the voiced frames of each window.

    The classic recipe for speaker-independent emotion (z-scored functionals), handed
    straight to the fusion layer beside what the convolutions learn: with a few
    thousand clips these statistics generalise to new voices better than anything the
    convolutions learn alone. (B, 200, D), (B, 200) -> (B, 2 * D + 1).
    """
    w = flags[:, :, None]
    n = w.sum(dim=1)
    share = n / voice.shape[1]
    n = n.clamp(min=1.0)
    mean = (voice * w).sum(dim=1) / n
    var = (((voice - mean[:, None, :]) ** 2) * w).sum(dim=1) / n
    return torch.cat([mean, var.clamp(min=1e-6).sqrt(), share], dim=1)


def _face_stats(face: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean and largest value of each column over the frames with a face."""
    w = present[:, :, None]
    seen = w.sum(dim=1)
    n = seen.clamp(min=1.0)
    mean = (face * w).sum(dim=1) / n
    peak = (face * w - (1.0 - w) * 1e3).amax(dim=1).clamp(min=-CLIP_Z)
    return torch.cat([mean, peak * (seen > 0.5)], dim=1)


# The expression network's classes as this model's emotions: the same names but for
# fear and surprise; it has no "calm", which gets the floor (a still face cannot tell
# calm from neutral, and the voice reads calm far better).
_EXPRESSION_AS = {"fear": "fearful", "surprise": "surprised"}
EXPRESSION_TO_EMOTION = torch.zeros(len(EXPRESSION_CLASSES), len(EMOTIONS))
for _i, _name in enumerate(EXPRESSION_CLASSES):
    EXPRESSION_TO_EMOTION[_i, EMOTIONS.index(_EXPRESSION_AS.get(_name, _name))] = 1.0
FACE_PROB_FLOOR = 1e-3


def face_logits(face: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Emotion logits (B, 8) of the expression network alone: the log of its class
    probabilities averaged over the frames with a face, mapped to `EMOTIONS`."""
    w = present[:, :, None]
    mean = (face[:, :, EXPRESSION] * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)
    probs = (mean @ EXPRESSION_TO_EMOTION.to(face)).clamp(min=FACE_PROB_FLOOR)
    return torch.log(probs / probs.sum(dim=1, keepdim=True))


class AffectNet(nn.Module):
    voice_mean: torch.Tensor
    voice_std: torch.Tensor
    speech_mean: torch.Tensor
    speech_std: torch.Tensor
    temperature: torch.Tensor
    face_temperature: torch.Tensor
    arousal_shift: torch.Tensor

    def __init__(self, hidden: int = 96, dropout: float = 0.3) -> None:
        super().__init__()
        # Training sets these: the population's voice rows and embeddings, and the
        # calibration temperatures.
        self.register_buffer("voice_mean", torch.zeros(VOICE_DIM))
        self.register_buffer("voice_std", torch.ones(VOICE_DIM))
        self.register_buffer("speech_mean", torch.zeros(EMBED_DIM))
        self.register_buffer("speech_std", torch.ones(EMBED_DIM))
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("face_temperature", torch.ones(()))
        self.register_buffer("arousal_shift", torch.zeros(()))
        n_stats = 2 * VOICE_DIM + 1
        self.voice = nn.Sequential(
            _block(VOICE_DIM, 64, 5), nn.MaxPool1d(2),
            _block(64, 96, 5), nn.MaxPool1d(2),
            _block(96, hidden, 3), nn.Dropout(0.1),
        )
        self.speech = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(EMBED_DIM, 128), nn.GELU(), nn.Dropout(dropout)
        )
        self.face = nn.Sequential(nn.Linear(2 * N_EXPRESSION + 1, 32), nn.GELU())
        self.fuse = nn.Sequential(
            nn.Linear(2 * hidden + n_stats + 128 + 32 + 3, 128), nn.GELU(), nn.Dropout(dropout)
        )
        self.emotion = nn.Linear(128, len(EMOTIONS))
        self.av = nn.Linear(128, 2)
        # the refinement from the caller's reference
        self.speech_rel = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(EMBED_DIM, 64), nn.GELU(), nn.Dropout(dropout)
        )
        self.refine = nn.Sequential(
            nn.Linear(128 + n_stats + 64 + 2 * N_GEOMETRY + 3, 96), nn.GELU(), nn.Dropout(dropout)
        )
        self.emotion_delta = nn.Linear(96, len(EMOTIONS))
        self.av_delta = nn.Linear(96, 2)

    def set_population(self, voiced_rows: torch.Tensor, embeddings: torch.Tensor) -> None:
        """Centre and scale the inputs on the training speakers' voiced rows and
        embeddings: the speaker-independent reading of a voice."""
        self.voice_mean.copy_(torch.nanmean(voiced_rows, dim=0))
        dev = voiced_rows - self.voice_mean
        var = torch.nanmean(dev * dev, dim=0)
        self.voice_std.copy_(var.sqrt().clamp(min=1e-3))
        self.voice_mean[VOICED_COL], self.voice_std[VOICED_COL] = 0.0, 1.0
        self.speech_mean.copy_(embeddings.mean(dim=0))
        self.speech_std.copy_(embeddings.std(dim=0).clamp(min=1e-3))

    @staticmethod
    def _pool(h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(
        self,
        voice: torch.Tensor,  # (B, 200, VOICE_DIM) raw rows
        face: torch.Tensor,  # (B, 20, FACE_DIM) raw rows
        speech: torch.Tensor,  # (B, EMBED_DIM)
        mask: torch.Tensor,  # (B, 3): has voice, face, speech embedding
        ref_voice: torch.Tensor,  # (B, 2, VOICE_DIM): the caller's mean and spread
        ref_face: torch.Tensor,  # (B, 2, FACE_DIM)
        ref_speech: torch.Tensor,  # (B, EMBED_DIM)
        weight: torch.Tensor,  # (B, 3): reference weights 0..1 (voice, face, speech)
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Calibrated emotion logits (B, 8), arousal (B,) in 0..1, valence (B,) in -1..1,
        and the uncalibrated logits of the first, speaker-independent answer."""
        mv, mf, ms = mask[:, :1], mask[:, 1:2], mask[:, 2:3]
        flags = voice[:, :, VOICED_COL]
        vz = zscore(voice, self.voice_mean, self.voice_std)
        conv = self._pool(self.voice(vz.transpose(1, 2))) * mv
        stats = voiced_stats(vz, flags) * mv
        sp = self.speech(zscore(speech, self.speech_mean, self.speech_std)) * ms
        present = face[:, :, PRESENT_COL]
        expr = torch.cat([_face_stats(face[:, :, EXPRESSION], present),
                          present.mean(dim=1, keepdim=True)], dim=1)
        fx = self.face(expr) * mf
        h = self.fuse(torch.cat([conv, stats, sp, fx, mask], dim=1))
        logits0, av0 = self.emotion(h), self.av(h)

        wv, wf, ws = weight[:, :1] * mv, weight[:, 1:2] * mf, weight[:, 2:3] * ms
        on_v, on_f, on_s = (wv > 0).float(), (wf > 0).float(), (ws > 0).float()
        rz = zscore(voice, ref_voice[:, 0:1], ref_voice[:, 1:2])
        rstats = voiced_stats(rz, flags) * on_v
        srel = self.speech_rel(((speech - ref_speech) / self.speech_std).clamp(-6, 6)) * on_s
        gz = zscore(face[:, :, GEOMETRY], ref_face[:, 0:1, GEOMETRY], ref_face[:, 1:2, GEOMETRY])
        gstats = _face_stats(gz, present) * on_f
        r = self.refine(torch.cat([h, rstats, srel, gstats, wv, wf, ws], dim=1))
        w = torch.maximum(torch.maximum(wv, wf), ws)
        logits = logits0 + w * self.emotion_delta(r)
        av = av0 + w * self.av_delta(r)
        face_only = ((mv == 0) & (mf > 0))[:, 0]
        calibrated = torch.where(face_only[:, None],
                                 face_logits(face, present) / self.face_temperature,
                                 logits / self.temperature)
        arousal = torch.sigmoid(av[:, 0] - self.arousal_shift)
        return calibrated, arousal, torch.tanh(av[:, 1]), logits0


def prepare(windows: Sequence[AffectWindow]) -> dict[str, torch.Tensor]:
    """Model inputs of a batch: raw rows, masks, and each window's reference."""
    b = len(windows)
    voice = np.zeros((b, VOICE_FRAMES, VOICE_DIM), np.float32)
    face = np.zeros((b, FACE_FRAMES, FACE_DIM), np.float32)
    speech = np.zeros((b, EMBED_DIM), np.float32)
    mask = np.zeros((b, 3), np.float32)
    ref_voice = np.zeros((b, 2, VOICE_DIM), np.float32)
    ref_voice[:, 1] = 1.0
    ref_face = np.zeros((b, 2, FACE_DIM), np.float32)
    ref_face[:, 1] = 1.0
    ref_speech = np.zeros((b, EMBED_DIM), np.float32)
    weight = np.zeros((b, 3), np.float32)
    for i, w in enumerate(windows):
        ref = w.ref
        if w.voice is not None:
            voice[i], mask[i, 0] = w.voice, 1.0
            if ref.voice is not None and ref.voice_weight > 0:
                ref_voice[i] = ref.voice.mean, ref.voice.std
                weight[i, 0] = ref.voice_weight
        if w.face is not None:
            face[i], mask[i, 1] = w.face, 1.0
            if ref.face is not None and ref.face_weight > 0:
                ref_face[i] = ref.face.mean, ref.face.std
                weight[i, 1] = ref.face_weight
        if w.speech is not None:
            speech[i], mask[i, 2] = w.speech, 1.0
            if ref.speech is not None and ref.speech_weight > 0:
                ref_speech[i], weight[i, 2] = ref.speech, ref.speech_weight
    # a frame without a face has nothing to read: blank it (present stays 0)
    face *= face[:, :, PRESENT_COL : PRESENT_COL + 1] > 0.5
    return {k: torch.from_numpy(v) for k, v in (
        ("voice", voice), ("face", face), ("speech", speech), ("mask", mask),
        ("ref_voice", ref_voice), ("ref_face", ref_face), ("ref_speech", ref_speech),
        ("weight", weight))}
