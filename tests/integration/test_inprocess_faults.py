"""A stage that raises inside one call degrades that call only.

Two consenting calls share one in-process server (the real session, perception, affect
model, voice and avatar on memory transports, in virtual time). In one of them, stages
are broken: the customer's audio carries frames at a rate the analysers refuse (voice
analysis and voice activity raise), its affect window and its cue loop raise, and its
speech rate is one the voice refuses (every reply's synthesis raises). The other call
must not notice; the broken one must go on with its media and its turn-taking, count
every failure and log each kind once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from avatar_agent.core.config import Config
from avatar_agent.runtime import Runtime
from tests.support.virtual_call import IN_RATE, VirtualCall, speech_pcm, start_runtime

STAGES = ("voice", "voice_activity", "affect", "cues", "tts")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    rt = await start_runtime(Config(), tmp_path_factory.mktemp("db") / "calls.db")
    yield rt
    await rt.close()


def _clips(data_dir: Path, held_out: set[str]) -> list[Path]:
    actor = sorted(s for s in held_out if s.startswith("ravdess:"))[0].split(":")[1]
    folder = data_dir / "speech_emotion" / "ravdess_full" / f"Actor_{actor}"
    return sorted(folder.glob("03-01-05-02-*.flac"))


def _wrong_rate_frame() -> av.AudioFrame:
    """20 ms at 16 kHz on a 48 kHz track: what the call's analysers cannot read."""
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 320), np.int16), format="s16",
                                       layout="mono")
    frame.sample_rate = 16_000
    return frame


def _raise(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("broken on purpose")


async def _both(calls: tuple[VirtualCall, VirtualCall], pcm: npt.NDArray[np.int16] | None,
                seconds: float | None = None, bad_every: int = 0) -> None:
    """Both calls hear the same thing, half a second at a time; every `bad_every`-th
    chunk the second call also gets a burst of frames its analysers refuse."""
    total = seconds if seconds is not None else len(pcm) / IN_RATE  # type: ignore[arg-type]
    step = round(0.5 * IN_RATE)
    for i, start in enumerate(range(0, round(total * IN_RATE), step)):
        chunk = None if pcm is None else pcm[start : start + step]
        for call in calls:
            await call.play(chunk, seconds=min(0.5, total - start / IN_RATE))
        if bad_every and i % bad_every == 0:
            for _ in range(5):
                calls[1].transport.push_audio(_wrong_rate_frame())


def _after(call: VirtualCall, kind: str, t: float) -> list[dict[str, Any]]:
    return [m for m in call.transport.events(kind) if m.get("t", 0.0) > t]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_stage_failing_in_one_call_degrades_that_call_only(
    runtime: Runtime, data_dir: Path, held_out_speakers: set[str], caplog: pytest.LogCaptureFixture
) -> None:
    healthy, broken = VirtualCall(runtime, consent=True), VirtualCall(runtime, consent=True)
    await healthy.start()
    await broken.start()
    calls = (healthy, broken)
    await _both(calls, None, seconds=2.0)  # both greeted
    assert broken.session.cues is not None and broken.session.affect is not None

    # Break the second call only: its own objects, nothing shared with the first.
    broken.session.cues.tick = _raise  # type: ignore[method-assign]
    broken.session.affect.core.window = _raise  # type: ignore[method-assign]
    stream = broken.session.stream
    assert stream is not None
    stream.set_targets(dataclasses.replace(stream.targets, speech_rate=0.0))
    t_broken = broken.t

    clips = _clips(data_dir, held_out_speakers)
    with caplog.at_level(logging.INFO):
        await _both(calls, speech_pcm(clips[:2]), bad_every=2)
        await _both(calls, None, seconds=3.0)  # the turn ends: both calls reply

    # The healthy call went on as if nothing happened.
    span = healthy.t - t_broken
    updates = _after(healthy, "affect", t_broken)  # while the window holds speech
    assert len(updates) >= 15
    assert np.median(np.diff([u["t"] for u in updates])) == pytest.approx(
        1 / runtime.config.affect.rate_hz, abs=0.02)
    assert len(_after(healthy, "cues", t_broken)) >= 0.9 * 10 * span
    replies = [m for m in _after(healthy, "speech", t_broken) if m["event"] == "start"]
    assert replies, "the healthy call stopped answering"
    assert healthy.session.faults.counts == {}

    # The broken call is still up, every stage's loop still running, its avatar's
    # audio still flowing to the end...
    assert broken.session.end_reason is None
    running = {t.get_name().split(":")[1] for t in broken.session._tasks._tasks}
    assert {"face", "voice", "voice-activity", "onset", "affect", "cues"} <= running, running
    assert broken.transport.heard[-1].pts / IN_RATE > broken.t - 0.2
    # ... its turn-taking survived the frames it could not read (the turn was heard,
    # and a reply was attempted: its synthesis failed) ...
    counts = broken.session.faults.counts
    assert {stage for stage, _ in counts} == set(STAGES), counts
    assert counts[("tts", "ValueError")] >= 1, counts
    assert counts[("cues", "RuntimeError")] >= 0.9 * 10 * span
    assert counts[("affect", "RuntimeError")] >= 3 * span
    assert counts[("voice_activity", "ValueError")] >= 2
    assert not _after(broken, "cues", t_broken)
    assert not _after(broken, "affect", t_broken)
    # ... and each kind of failure was logged once, not once per frame or tick.
    errors = [r for r in caplog.records
              if r.levelno >= logging.ERROR and broken.call_id in r.getMessage()]
    logged = sorted(r.getMessage().split(": ")[1].split(" ")[0] for r in errors)
    assert logged == sorted(STAGES), [r.getMessage() for r in errors]
    assert not [r for r in caplog.records
                if r.levelno >= logging.ERROR and healthy.call_id in r.getMessage()]
    print(f"broken call: {counts}")

    await broken.hang_up()
    await healthy.hang_up()
    assert "tts" in caplog.text.split(f"call {broken.call_id}: stage failures")[-1]
