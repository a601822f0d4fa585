"""The tuning page's files: atomic writes (one step, same permissions, nothing left
behind) and the sample line's WAV."""

from __future__ import annotations

import asyncio
import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from avatar_agent.avatar.live_preview import LINE_GAP_S
from avatar_agent.core.config import ConfigError
from avatar_agent.operators.tuning_preview import loop_wav
from avatar_agent.operators.tuning_state import read_persona, write_atomic
from avatar_agent.speech.types import PhonemeSpan, Utterance


def test_write_atomic_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "support.yaml"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    write_atomic(path, "café: 1\r\n".encode())
    assert path.read_bytes() == "café: 1\r\n".encode()
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.stat().st_ino != inode  # a new file renamed over: readers see old or new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["support.yaml"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "support.yaml"
    path.write_bytes(b"old\n")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["support.yaml"]


def test_the_sample_wav_is_one_preview_loop_long() -> None:
    pcm = (np.sin(np.arange(24000) / 10.0) * 8000).astype(np.int16)
    utt = Utterance("Sorry.", pcm, 48000, (PhonemeSpan("s", 0.0, 0.5),))
    with wave.open(io.BytesIO(loop_wav(utt))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48000)
        assert w.getnframes() / 48000 == utt.duration + LINE_GAP_S
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.array_equal(frames[:24000], pcm) and not frames[24000:].any()


def test_a_persona_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        asyncio.run(read_persona(path))
    path.write_bytes("name: café\r\n".encode())
    assert asyncio.run(read_persona(path)) == "name: café\r\n"  # line ends kept
