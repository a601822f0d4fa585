"""The affect model: 2 s of voice and face rows in, arousal, valence, emotions and anger out.

Two small 1-D convolutional branches, one over 200 voice rows (10 ms each) and one
over 20 face rows (100 ms each), read the rows as z-scores against the customer's own
baseline (:mod:`avatar_agent.affect.features`). Each branch is pooled over time; a
modality that is missing (no consent for video, camera off, not speaking yet) is
masked out, so the same weights serve voice only, face only, or both. The baseline
pitch itself is a third input, so the model knows what it is comparing against.

Beside the rows, the speech embedding of the same 2 s
(:mod:`avatar_agent.perception.speech_embedding`) goes through one small layer, read
both as it is and against the mean embedding of the customer's earlier speech.

``anger_index`` = 100 x P(angry): 0 when the model sees no anger, 100 when it is sure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from avatar_agent.affect.features import (
    F0_COL,
    FACE_DIM,
    FACE_FRAMES,
    PRESENT_COL,
    VOICE_DIM,
    VOICE_FRAMES,
    VOICED_COL,
    SpeakerBaseline,
    normalise,
)
from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.perception.speech_embedding import EMBED_DIM

F32 = npt.NDArray[np.float32]
FORMAT = "avatar-agent-affect/1"
# Centre of the baseline-pitch input: 311 Hz (30 semitones above 55 Hz), in semitones
# re 100 Hz. The shipped weights were trained with this centre.
_PITCH_CENTRE_ST = 30.0 - 12.0 * math.log2(100.0 / 55.0)


@dataclass(frozen=True)
class AffectWindow:
    """One call's last 2 s: raw rows plus the baselines they are read against."""

    voice: F32 | None  # (200, VOICE_DIM)
    voice_base: SpeakerBaseline | None
    face: F32 | None  # (20, FACE_DIM)
    face_base: SpeakerBaseline | None
    speech: F32 | None = None  # (EMBED_DIM,) speech embedding of the same 2 s
    speech_base: F32 | None = None  # (EMBED_DIM,) the customer's mean embedding so far

    @property
    def has_voice(self) -> bool:
        return self.voice is not None and self.voice_base is not None

    @property
    def has_speech(self) -> bool:
        return self.speech is not None and self.speech_base is not None

    @property
    def has_face(self) -> bool:
        return self.face is not None and self.face_base is not None


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
        raise ValueError("the window has neither voice nor face with a baseline")
    if w.voice is not None and w.voice.shape != (VOICE_FRAMES, VOICE_DIM):
        raise ValueError(f"voice rows must be {(VOICE_FRAMES, VOICE_DIM)}, got {w.voice.shape}")
    if w.face is not None:
        if w.face.shape != (FACE_FRAMES, FACE_DIM):
            raise ValueError(f"face rows must be {(FACE_FRAMES, FACE_DIM)}, got {w.face.shape}")
        if not np.isfinite(w.face).all():
            raise ValueError("face rows contain NaN or infinity")
    for base, dim in ((w.voice_base, VOICE_DIM), (w.face_base, FACE_DIM)):
        if base is not None and (base.mean.shape != (dim,) or not np.isfinite(base.mean).all()):
            raise ValueError("a baseline has the wrong shape or is not finite")
    for vec in (w.speech, w.speech_base):
        if vec is not None and (vec.shape != (EMBED_DIM,) or not np.isfinite(vec).all()):
            raise ValueError(f"a speech embedding must be {EMBED_DIM} finite values")


def _block(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.BatchNorm1d(c_out), nn.GELU()
    )


def voiced_stats(voice: torch.Tensor) -> torch.Tensor:
    """Mean and spread of every voice column over the voiced frames of each window.

    The classic recipe for speaker-independent emotion (per-speaker z-scored
    functionals) handed straight to the fusion layer, beside what the convolutions
    learn: with a few thousand clips, these statistics generalise to new voices better
    than anything the convolutions can learn alone. (B, 200, D) -> (B, 2 * D + 1).
    """
    w = voice[:, :, VOICED_COL : VOICED_COL + 1]
    n = w.sum(dim=1)
    share = n / voice.shape[1]
    n = n.clamp(min=1.0)
    mean = (voice * w).sum(dim=1) / n
    var = (((voice - mean[:, None, :]) ** 2) * w).sum(dim=1) / n
    return torch.cat([mean, var.clamp(min=1e-6).sqrt(), share], dim=1)


class AffectNet(nn.Module):
    speech_mean: torch.Tensor
    speech_std: torch.Tensor

    def __init__(
        self, hidden: int = 96, dropout: float = 0.3, stats: bool = False, speech: bool = False
    ) -> None:
        super().__init__()
        self.stats = stats
        n_stats = 2 * VOICE_DIM + 1 if stats else 0
        n_speech = 128 if speech else 0
        # Training sets these to the mean and spread of the training clips' embeddings.
        self.register_buffer("speech_mean", torch.zeros(EMBED_DIM))
        self.register_buffer("speech_std", torch.ones(EMBED_DIM))
        self.speech = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(2 * EMBED_DIM, 128), nn.GELU(), nn.Dropout(dropout)
        ) if speech else None
        self.voice = nn.Sequential(
            _block(VOICE_DIM, 64, 5), nn.MaxPool1d(2),
            _block(64, 96, 5), nn.MaxPool1d(2),
            _block(96, hidden, 3), nn.Dropout(0.1),
        )
        self.face = nn.Sequential(_block(FACE_DIM, 48, 3), _block(48, hidden, 3))
        self.fuse = nn.Sequential(
            nn.Linear(4 * hidden + 4 + n_stats + n_speech, 128), nn.GELU(), nn.Dropout(dropout)
        )
        self.emotion = nn.Linear(128, len(EMOTIONS))
        self.av = nn.Linear(128, 2)

    @property
    def use_speech(self) -> bool:
        return self.speech is not None

    def set_speech_scale(self, embeddings: torch.Tensor) -> None:
        """Centre and scale the embedding input on the training clips' embeddings."""
        self.speech_mean.copy_(embeddings.mean(dim=0))
        self.speech_std.copy_(embeddings.std(dim=0).clamp(min=1e-3))

    @staticmethod
    def _pool(h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(
        self,
        voice: torch.Tensor,  # (B, 200, VOICE_DIM) z-scores
        face: torch.Tensor,  # (B, 20, FACE_DIM) z-scores
        mask: torch.Tensor,  # (B, 3): has voice, has face, has speech embedding
        context: torch.Tensor,  # (B, 1): baseline pitch, scaled
        speech: torch.Tensor | None = None,  # (B, 2, EMBED_DIM): embedding, its baseline
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Emotion logits (B, 8), arousal (B,) in 0..1, valence (B,) in -1..1."""
        v = self._pool(self.voice(voice.transpose(1, 2))) * mask[:, :1]
        f = self._pool(self.face(face.transpose(1, 2))) * mask[:, 1:2]
        parts = [v, f, mask, context * mask[:, :1]]
        if self.stats:
            parts.append(voiced_stats(voice) * mask[:, :1])
        if self.speech is not None:
            if speech is None:
                raise ValueError("this model reads speech embeddings")
            own = (speech[:, 0] - self.speech_mean) / self.speech_std
            rel = (speech[:, 0] - speech[:, 1]) / self.speech_std
            z = torch.cat([own, rel], dim=1).clamp(-6.0, 6.0)
            parts.append(self.speech(z) * mask[:, 2:3])
        h = self.fuse(torch.cat(parts, dim=1))
        av = self.av(h)
        return self.emotion(h), torch.sigmoid(av[:, 0]), torch.tanh(av[:, 1])


def prepare(windows: Sequence[AffectWindow]) -> dict[str, torch.Tensor]:
    """Model inputs of a batch, normalised against each window's baselines."""
    b = len(windows)
    voice = np.zeros((b, VOICE_FRAMES, VOICE_DIM), np.float32)
    face = np.zeros((b, FACE_FRAMES, FACE_DIM), np.float32)
    mask = np.zeros((b, 3), np.float32)
    ctx = np.zeros((b, 1), np.float32)
    speech = np.zeros((b, 2, EMBED_DIM), np.float32)
    for i, w in enumerate(windows):
        if w.speech is not None and w.speech_base is not None:
            speech[i, 0], speech[i, 1] = w.speech, w.speech_base
            mask[i, 2] = 1.0
        if w.voice is not None and w.voice_base is not None:
            voice[i] = normalise(w.voice, w.voice_base, VOICED_COL)
            mask[i, 0] = 1.0
            ctx[i, 0] = (float(w.voice_base.mean[F0_COL]) - _PITCH_CENTRE_ST) / 10.0
        if w.face is not None and w.face_base is not None:
            face[i] = normalise(w.face, w.face_base, PRESENT_COL, blank_unflagged=True)
            mask[i, 1] = 1.0
    return {
        "voice": torch.from_numpy(voice),
        "face": torch.from_numpy(face),
        "mask": torch.from_numpy(mask),
        "context": torch.from_numpy(ctx),
        "speech": torch.from_numpy(speech),
    }


def pick_device(name: str = "auto") -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("affect.device is cuda but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


class AffectPredictor:
    """The trained model on a device; ``predict`` is blocking (run it in a worker)."""

    def __init__(self, net: AffectNet, device: torch.device, meta: dict[str, Any]) -> None:
        self.device = device
        self.net = net.to(device).eval()
        self.meta = meta

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> AffectPredictor:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no affect model; train one with `avatar-agent train --data DIR`"
            )
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not an avatar-agent affect model ({FORMAT})")
        net = AffectNet(**blob["hparams"])
        net.load_state_dict(blob["state_dict"])
        return cls(net, pick_device(device), dict(blob.get("meta", {})))

    @torch.inference_mode()
    def predict(self, windows: Sequence[AffectWindow]) -> list[AffectOutput]:
        if not windows:
            return []
        inputs = {k: v.to(self.device) for k, v in prepare(windows).items()}
        logits, arousal, valence = self.net(**inputs)
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        a, v = arousal.cpu().numpy(), valence.cpu().numpy()
        return [
            AffectOutput(float(a[i]), float(v[i]), tuple(float(p) for p in probs[i]))
            for i in range(len(windows))
        ]


def save_model(
    path: Path, net: AffectNet, hparams: dict[str, Any], meta: dict[str, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(
        {"format": FORMAT, "hparams": hparams, "state_dict": state, "meta": meta}, path
    )
