"""Fake-capture files for Chromium, made from real clips with ffmpeg.

Chromium's ``--use-file-for-fake-video-capture`` only reads raw Y4M (or MJPEG) and
``--use-file-for-fake-audio-capture`` only reads PCM WAV, so real talking-face clips
have to be converted first. Both files loop in the browser, so a short clip is enough.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

WIDTH = 640
HEIGHT = 480
FPS = 30
SAMPLE_RATE = 48_000


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg is not on PATH")
    return exe


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def make_y4m(src: Path, dst: Path, *, seconds: float | None = None) -> Path:
    """Convert ``src`` to a 640x480, 30 fps, yuv420p Y4M file at ``dst``.

    The picture is scaled to fit and padded rather than stretched, so a face keeps
    its proportions for anything that analyses it downstream.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    vf = (
        f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
        f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},format=yuv420p"
    )
    args = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    if seconds is not None:
        args += ["-t", f"{seconds:.3f}"]
    args += ["-an", "-vf", vf, "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", str(dst)]
    _run(args)
    return dst


def make_wav(src: Path, dst: Path, *, channels: int = 1, seconds: float | None = None) -> Path:
    """Convert the audio of ``src`` to 48 kHz signed 16-bit PCM WAV at ``dst``."""
    if channels not in (1, 2):
        raise ValueError("channels must be 1 (mono) or 2 (stereo)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    args = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    if seconds is not None:
        args += ["-t", f"{seconds:.3f}"]
    args += ["-vn", "-ac", str(channels), "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
             "-f", "wav", str(dst)]
    _run(args)
    return dst
