"""Whole calls in-process, in virtual time: the real session with real perception,
affect model, escalation watcher, Piper voice and avatar, on a memory transport.

Real customers' recordings from ../shared/data go in as 20 ms WebRTC-format frames;
the clock moves only as frames are pushed, so there is no subprocess and no sleep,
and the same input gives the same call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from avatar_agent.core.config import Config
from avatar_agent.core.events import Escalation, LevelChanged, SpeechEvent
from avatar_agent.runtime import Runtime
from tests.support.virtual_call import FRAME, IN_RATE, VirtualCall, speech_pcm, start_runtime


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    rt = await start_runtime(Config(), tmp_path_factory.mktemp("db") / "calls.db")
    yield rt
    await rt.close()


def _actor_clips(data_dir: Path, held_out: set[str], pattern: str) -> list[Path]:
    actor = sorted(s for s in held_out if s.startswith("ravdess:"))[0].split(":")[1]
    folder = data_dir / "speech_emotion" / "ravdess_full" / f"Actor_{actor}"
    return sorted(folder.glob(pattern))


def _first_sound(pcm: np.ndarray, below_peak_db: float = 30.0) -> float:
    """Seconds into `pcm` of its first 20 ms frame within `below_peak_db` of its loudest."""
    frames = pcm[: len(pcm) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64) / 32768
    rms_db = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-12)
    return float(np.argmax(rms_db > rms_db.max() - below_peak_db)) * FRAME / IN_RATE


@pytest.mark.asyncio(loop_scope="module")
async def test_barge_in_cuts_the_avatar_and_it_answers_after_the_turn(
    runtime: Runtime, data_dir: Path, held_out_speakers: set[str]
) -> None:
    """No consent: only voice activity runs, and turn-taking still works."""
    call = VirtualCall(runtime, consent=False)
    await call.start()
    await call.play(seconds=1.0)  # the greeting starts
    started = [m for m in call.transport.events("speech") if m["event"] == "start"]
    assert started and runtime.config.tts.greeting.startswith(started[0]["text"])
    assert not call.transport.events("affect")  # no consent, no affect

    pcm = speech_pcm(_actor_clips(data_dir, held_out_speakers, "03-01-01-01-01-*.flac")[:1])
    spoke_at = call.t + _first_sound(pcm)
    await call.play(pcm)
    ends = [m for m in call.transport.events("speech") if m["event"] == "end"]
    assert ends and ends[0].get("interrupted") is True
    cut_at = ends[0]["t"]
    # cut within 0.6 s of the customer's first sound (onset hold, then the VAD confirms)
    assert spoke_at < cut_at < spoke_at + 0.6, (spoke_at, cut_at)
    # the avatar's audio really stops there: silent from the cut to its next sentence
    next_start = min([m["t"] for m in call.transport.events("speech")
                      if m["event"] == "start" and m["t"] > cut_at] or [call.t])
    after = [f for f in call.transport.heard
             if cut_at + 0.05 < f.pts / IN_RATE and f.pts / IN_RATE + 0.02 <= next_start]
    assert len(after) > 10 and all(not np.any(f.to_ndarray()) for f in after)
    bus = [e for e in call.published() if isinstance(e, SpeechEvent)]
    assert any(e.interrupted for e in bus)  # the operators saw it too

    await call.play(seconds=3.0)  # the customer's turn has ended: the avatar answers
    replies = [m for m in call.transport.events("speech")
               if m["event"] == "start" and m["t"] > cut_at]
    assert replies and replies[0]["t"] > spoke_at + 1.0
    await call.hang_up()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def angry_call(
    runtime: Runtime, data_dir: Path, held_out_speakers: set[str]
) -> AsyncIterator[VirtualCall]:
    """A consenting caller the model never met, angry from the first word, for 15 s."""
    clips = (_actor_clips(data_dir, held_out_speakers, "03-01-05-02-*.flac")
             + _actor_clips(data_dir, held_out_speakers, "03-01-05-01-*.flac"))
    call = VirtualCall(runtime, consent=True)
    await call.start(escalations=True)
    await call.play(speech_pcm(clips[:4]))
    await call.play(seconds=1.0)
    yield call
    await call.hang_up()


@pytest.mark.asyncio(loop_scope="module")
async def test_an_angry_caller_raises_the_level(angry_call: VirtualCall) -> None:
    updates = angry_call.transport.events("affect")
    # while the window holds enough speech, an update every 1/rate_hz on the data
    # channel (the pauses between sentences leave the window too empty to read)
    steps = np.diff([u["t"] for u in updates])
    assert len(updates) >= 30
    assert np.median(steps) == pytest.approx(1 / Config().affect.rate_hz, abs=0.02)
    levels = [e for e in angry_call.published() if isinstance(e, LevelChanged)]
    assert levels and levels[0].level in ("dissatisfied", "furious")
    assert updates[-1]["level"] != "calm"
    print(f"level changes {[(round(e.t, 2), e.level) for e in levels]}, "
          f"max anger {max(u['anger_index'] for u in updates)}")


@pytest.mark.asyncio(loop_scope="module")
async def test_an_angry_caller_escalates_within_10_seconds(angry_call: VirtualCall) -> None:
    escalations = [e for e in angry_call.published() if isinstance(e, Escalation)]
    assert escalations, "no escalation"
    first = escalations[0]
    print(f"escalated at {first.t:.2f} s: {first.detail}")
    assert first.t <= 10.0 and first.id is not None  # stored, with the call's context
    assert first.context["curve"]
