"""Audio input for perception: live 48 kHz call audio and files, both to 16 kHz mono float32.

The analysers (prosody, VAD) all work on 16 kHz mono float32 in [-1, 1]. Call audio
arrives from WebRTC as 48 kHz int16 frames of 10-20 ms, mono or stereo, planar
``(channels, n)`` or packed ``(1, channels * n)`` as PyAV's ``AudioFrame.to_ndarray()``
gives them. :class:`Downsampler` converts such a stream chunk by chunk; its output
does not depend on how the input was cut, so there are no clicks at frame edges.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

TARGET_RATE = 16_000

FloatArray = npt.NDArray[np.float32]

# 193 taps at 48 kHz: Kaiser beta 8 gives ~80 dB stop-band attenuation with a
# ~1.2 kHz transition band, so a 7 kHz cut-off leaves speech (< 6.5 kHz) untouched
# and removes everything that would fold back from above 8 kHz. An odd length
# with (taps - 1) / 2 a multiple of the decimation factor makes the group delay
# a whole number of output samples (96 input = 32 output samples = 2 ms).
_TAPS_PER_FACTOR = {3: 193, 2: 129}
_KAISER_BETA = 8.0
_CUTOFF_HZ = 7_000.0


class AudioFileError(ValueError):
    """An audio file could not be read: missing, empty, corrupt, or without audio."""


def _design_lowpass(in_rate: int, factor: int) -> npt.NDArray[np.float64]:
    """Kaiser-windowed sinc, normalised to unity gain at DC (the window method)."""
    taps = _TAPS_PER_FACTOR.get(factor, 64 * factor + 1)
    n = np.arange(taps, dtype=np.float64) - (taps - 1) / 2.0
    cutoff = 2.0 * _CUTOFF_HZ / in_rate  # as a share of Nyquist
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(taps, _KAISER_BETA)
    return np.asarray(h / h.sum(), dtype=np.float64)


def to_mono(samples: npt.ArrayLike, channels: int) -> npt.NDArray[np.float64]:
    """Mix a chunk of ``channels``-channel audio down to mono float64 in [-1, 1].

    Accepts planar ``(c, n)`` with ``c > 1`` (self-describing, ``channels`` is not
    consulted), or packed ``(1, channels * n)`` (PyAV's layout for packed formats such
    as ``s16``) or a flat 1-D array, both read as ``channels`` interleaved channels.
    Integer input is scaled by its full-scale value (int16: 32768), float input is
    taken as is.
    """
    arr = np.asarray(samples)
    if arr.dtype.kind == "i":
        scaled = arr.astype(np.float64) / float(-np.iinfo(arr.dtype).min)
    elif arr.dtype.kind == "f":
        scaled = arr.astype(np.float64)
    else:
        raise TypeError(f"unsupported sample dtype {arr.dtype}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if scaled.ndim == 2 and scaled.shape[0] > 1:
        planar = scaled
    elif scaled.ndim == 1 or (scaled.ndim == 2 and scaled.shape[0] == 1):
        flat = scaled.reshape(-1)
        if flat.size % channels:
            raise ValueError(f"{flat.size} interleaved samples is not a multiple of {channels}")
        planar = flat.reshape(-1, channels).T
    else:
        raise ValueError(f"cannot read shape {arr.shape} as {channels}-channel audio")
    mono: npt.NDArray[np.float64] = planar.mean(axis=0)
    return mono


class Downsampler:
    """Streaming ``in_rate`` → 16 kHz mono converter with carried filter state.

    Each chunk is mixed to mono, low-pass filtered by a linear-phase FIR whose input
    history carries over to the next chunk, then every ``factor``-th
    sample is kept, continuing the decimation phase across chunks. Pushing a signal
    in any chunking therefore gives exactly the one-shot result. The output lags the
    input by :attr:`delay_s` (2 ms at 48 kHz). ``in_rate`` must be a multiple of 16 kHz.
    ``channels`` says how many channels packed (interleaved) input holds; planar
    ``(c, n)`` input and PyAV frames describe themselves (see :func:`to_mono`).
    """

    def __init__(self, in_rate: int = 48_000, channels: int = 1) -> None:
        if in_rate % TARGET_RATE:
            raise ValueError(f"in_rate must be a multiple of {TARGET_RATE}, got {in_rate}")
        self.in_rate = in_rate
        self.channels = channels
        self.factor = in_rate // TARGET_RATE
        self._taps = _design_lowpass(in_rate, self.factor) if self.factor > 1 else None
        self.reset()

    @property
    def delay_s(self) -> float:
        """Group delay of the anti-alias filter, in seconds."""
        if self._taps is None:
            return 0.0
        return (len(self._taps) - 1) / 2 / self.in_rate

    def reset(self) -> None:
        """Forget all carried state, as if the stream had just started."""
        self._zi = np.zeros(0 if self._taps is None else len(self._taps) - 1)
        # Index, within the next chunk, of the first sample to keep.
        self._phase = 0

    def push(self, samples: npt.ArrayLike, channels: int | None = None) -> FloatArray:
        """Convert one chunk; returns the 16 kHz mono samples it completes (may be empty).

        ``channels`` overrides the constructor's value for packed input of this chunk.
        """
        mono = to_mono(samples, self.channels if channels is None else channels)
        if self._taps is None:
            kept = mono
        else:
            # The last taps-1 input samples carry over, so chunking never changes the output.
            padded = np.concatenate((self._zi, mono))
            self._zi = padded[padded.size - (self._taps.size - 1) :]
            # Only the kept outputs are computed: a strided view, one dot product each.
            starts = np.arange(self._phase, mono.size, self.factor)
            windows = np.lib.stride_tricks.sliding_window_view(padded, self._taps.size)
            kept = windows[starts] @ self._taps[::-1]
            self._phase = (self._phase - mono.size) % self.factor
        out: FloatArray = np.clip(kept, -1.0, 1.0).astype(np.float32)
        return out

    def push_frame(self, frame: av.AudioFrame) -> FloatArray:
        """Convert one PyAV audio frame of any sample format and layout."""
        if frame.sample_rate != self.in_rate:
            raise ValueError(f"frame rate {frame.sample_rate} Hz, expected {self.in_rate} Hz")
        return self.push(frame.to_ndarray(), channels=len(frame.layout.channels))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def load_audio(path: str | Path, rate: int = TARGET_RATE) -> tuple[FloatArray, float]:
    """Decode the first audio stream of any file FFmpeg reads to mono float32 at ``rate``.

    Returns ``(samples, duration_s)`` with ``duration_s = len(samples) / rate``.
    Raises :class:`AudioFileError` with a one-line message when the file is missing,
    empty, not decodable, or has no audio stream.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: file is empty")
    chunks: list[FloatArray] = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{p}: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1))
            for out in resampler.resample(None):
                chunks.append(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1))
    except AudioFileError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise AudioFileError(f"{p}: cannot decode audio ({_one_line(exc)})") from exc
    if not chunks:
        raise AudioFileError(f"{p}: audio stream holds no samples")
    samples = np.clip(np.concatenate(chunks), -1.0, 1.0).astype(np.float32)
    if samples.size == 0:
        raise AudioFileError(f"{p}: audio stream holds no samples")
    return samples, samples.size / rate
