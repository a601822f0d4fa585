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


def make_wav(src: Path, dst: Path, *, channels: int = 1, seconds: float | None = None,
             lead_s: float = 0.0) -> Path:
    """Convert the audio of ``src`` to 48 kHz signed 16-bit PCM WAV at ``dst``,
    after ``lead_s`` seconds of silence."""
    if channels not in (1, 2):
        raise ValueError("channels must be 1 (mono) or 2 (stereo)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    args = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    if seconds is not None:
        args += ["-t", f"{seconds:.3f}"]
    if lead_s > 0:
        args += ["-af", f"adelay={lead_s * 1000:.0f}:all=1"]
    args += ["-vn", "-ac", str(channels), "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
             "-f", "wav", str(dst)]
    _run(args)
    return dst


def make_long_video(clips: list[Path], dst: Path) -> Path:
    """The clips' pictures one after another, with only the first clip's sound: a
    customer who says one thing, then stays on camera and listens."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    n = len(clips)
    args = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y"]
    for clip in clips:
        args += ["-i", str(clip)]
    # The later clips' sound is muted rather than padded: `apad` with `-shortest` never
    # ends on a filter graph's output.
    mutes = "".join(f"[{i}:a]volume=0[m{i}];" for i in range(1, n))
    pairs = "[0:v][0:a]" + "".join(f"[{i}:v][m{i}]" for i in range(1, n))
    graph = f"{mutes}{pairs}concat=n={n}:v=1:a=1[v][a]"
    args += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(dst)]
    _run(args)
    return dst
