"""The trained affect model on a device: several networks, their answers averaged.

The members are trained alike on the same speakers from different seeds, each stopped
early and calibrated on held-out speakers (:mod:`avatar_agent.training.train`). With a
few thousand clips of a few dozen speakers, one network's reading of a new voice
hangs on its seed; the mean of several members' probabilities varies less from one
caller to the next. The mean of calibrated members is returned as log-probabilities,
so everything that reads a network's calibrated logits reads the ensemble's alike.
The anger index then gets its own calibration (:meth:`AffectEnsemble.set_anger_scaling`),
fitted on held-out speakers' calls.

For inference the ensemble is traced once at load (TorchScript): the members are
small, so a batch-1 window costs mostly the interpreter's walk over their layers,
which the trace removes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avatar_agent.affect.labels import EMOTIONS
from avatar_agent.affect.model import AffectNet, AffectOutput, AffectWindow, prepare
from avatar_agent.affect.reference import NO_REFERENCE
from avatar_agent.perception.features import FACE_DIM, FACE_FRAMES, VOICE_DIM, VOICE_FRAMES
from avatar_agent.perception.speech_embedding import EMBED_DIM

FORMAT = "avatar-agent-affect/3"
SINGLE_FORMAT = "avatar-agent-affect/2"  # one network; still read
PROB_FLOOR = 1e-12
ANGRY = EMOTIONS.index("angry")
INPUTS = ("voice", "face", "speech", "mask", "ref_voice", "ref_face", "ref_speech", "weight")


class AffectEnsemble(nn.Module):
    anger_scale: torch.Tensor
    anger_shift: torch.Tensor

    def __init__(self, members: Sequence[AffectNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        # The anger index's own calibration (Platt scaling of the angry log-odds),
        # fitted on held-out speakers' calls: each member's temperature serves the
        # eight classes together, and the mean of members is less sure than each.
        self.register_buffer("anger_scale", torch.ones(()))
        self.register_buffer("anger_shift", torch.zeros(()))

    def set_anger_scaling(self, scale: float, shift: float) -> None:
        self.anger_scale.fill_(scale)
        self.anger_shift.fill_(shift)

    def _rescale_anger(self, probs: torch.Tensor) -> torch.Tensor:
        """P(angry) -> sigmoid(scale * logit + shift); the other classes keep their
        proportions and share what is left."""
        p = probs[:, ANGRY : ANGRY + 1].clamp(PROB_FLOOR, 1 - PROB_FLOOR)
        new = torch.sigmoid(self.anger_scale * torch.log(p / (1 - p)) + self.anger_shift)
        rest = probs * ((1 - new) / (1 - p))
        return torch.cat([rest[:, :ANGRY], new, rest[:, ANGRY + 1 :]], dim=1)

    def forward(
        self, voice: torch.Tensor, face: torch.Tensor, speech: torch.Tensor,
        mask: torch.Tensor, ref_voice: torch.Tensor, ref_face: torch.Tensor,
        ref_speech: torch.Tensor, weight: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`AffectNet.forward`: calibrated emotion log-probabilities (the
        members' mean probabilities), mean arousal, mean valence, and the mean of the
        first answers' logits."""
        outs = [m(voice, face, speech, mask, ref_voice, ref_face, ref_speech, weight)
                for m in self.members]
        probs = torch.stack([torch.softmax(o[0], dim=1) for o in outs]).mean(dim=0)
        if float(self.anger_scale) != 1.0 or float(self.anger_shift) != 0.0:
            probs = self._rescale_anger(probs)
        return (torch.log(probs.clamp(min=PROB_FLOOR)),
                torch.stack([o[1] for o in outs]).mean(dim=0),
                torch.stack([o[2] for o in outs]).mean(dim=0),
                torch.stack([o[3] for o in outs]).mean(dim=0))


def pick_device(name: str = "auto") -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("affect.device is cuda but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def _example(device: torch.device) -> tuple[torch.Tensor, ...]:
    """A batch-1 input with voice, face and speech, to trace with."""
    rng = np.random.default_rng(0)
    face = rng.normal(0, 1, (FACE_FRAMES, FACE_DIM)).astype(np.float32)
    w = AffectWindow(rng.normal(-40, 10, (VOICE_FRAMES, VOICE_DIM)).astype(np.float32), face,
                     rng.normal(0, 1, EMBED_DIM).astype(np.float32), NO_REFERENCE)
    inputs = prepare([w])
    return tuple(inputs[k].to(device) for k in INPUTS)


def trace(net: nn.Module, device: torch.device) -> Any:
    """The network as a frozen TorchScript graph (eval mode), for any batch size."""
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's notices about its own future
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            net.eval(), _example(device), check_trace=False)
        return torch.jit.freeze(traced)


class AffectPredictor:
    """The trained model on a device; ``predict`` is blocking (run it in a worker)."""

    def __init__(self, net: AffectNet | AffectEnsemble, device: torch.device,
                 meta: dict[str, Any], compile: bool = True) -> None:
        self.device = device
        ensemble = net if isinstance(net, AffectEnsemble) else AffectEnsemble([net])
        self.net = ensemble.to(device).eval()
        self.meta = meta
        self._run: Any = trace(self.net, device) if compile else self.net

    @property
    def members(self) -> int:
        return len(self.net.members)

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> AffectPredictor:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no affect model; train one with `avatar-agent train --data DIR`"
            )
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") not in (FORMAT, SINGLE_FORMAT):
            raise ValueError(f"{path}: not an avatar-agent affect model ({FORMAT})")
        states = (blob["members"] if blob["format"] == FORMAT else [blob["state_dict"]])
        members = []
        for state in states:
            net = AffectNet(**blob["hparams"])
            net.load_state_dict(state)
            members.append(net)
        ensemble = AffectEnsemble(members)
        scaling = blob.get("anger_scaling", {"scale": 1.0, "shift": 0.0})
        ensemble.set_anger_scaling(float(scaling["scale"]), float(scaling["shift"]))
        return cls(ensemble, pick_device(device), dict(blob.get("meta", {})))

    @torch.inference_mode()
    def predict(self, windows: Sequence[AffectWindow]) -> list[AffectOutput]:
        if not windows:
            return []
        inputs = prepare(windows)
        logits, arousal, valence, _ = self._run(*(inputs[k].to(self.device) for k in INPUTS))
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        a, v = arousal.cpu().numpy(), valence.cpu().numpy()
        return [
            AffectOutput(float(a[i]), float(v[i]), tuple(float(p) for p in probs[i]))
            for i in range(len(windows))
        ]


def save_model(path: Path, net: AffectNet | AffectEnsemble, hparams: dict[str, Any],
               meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ensemble = net if isinstance(net, AffectEnsemble) else AffectEnsemble([net])
    states = [{k: v.detach().cpu() for k, v in m.state_dict().items()}
              for m in ensemble.members]
    scaling = {"scale": float(ensemble.anger_scale), "shift": float(ensemble.anger_shift)}
    torch.save({"format": FORMAT, "hparams": hparams, "members": states,
                "anger_scaling": scaling, "meta": meta}, path)
