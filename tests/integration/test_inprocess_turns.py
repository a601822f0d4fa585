"""Turn-taking, replies, body language and consent in whole calls held in-process.

The real session on a memory transport, in virtual time (tests/support/virtual_call.py):
real customers' recordings go in as 20 ms frames, the clock moves only as they are
pushed, and every time below is read on the call's media clock, so nothing waits on
a wall clock and the same input gives the same call.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from avatar_agent.affect.script import parse_script
from avatar_agent.avatar.live_cues import CUES_HZ, POLL_S
from avatar_agent.core.config import PROJECT_ROOT, Config
from avatar_agent.core.events import AffectUpdate
from avatar_agent.runtime import Runtime
from tests.support.virtual_call import IN_RATE, VirtualCall, speech_pcm, start_runtime

pytestmark = pytest.mark.asyncio(loop_scope="module")

# A greeting several sentences long, so the customer can talk over it.
GREETING = (
    "Hello, I am the virtual support assistant. I can help you with orders, deliveries "
    "and billing. Please tell me what happened, and take your time. I will look into it "
    "while we talk, and I will stay with you until it is solved."
)
FIRST = "Hello, I am the virtual support assistant."
CLIP = "speech_emotion/ravdess/Actor_01/03-01-01-01-01-01-01.flac"  # "Kids are talking..."
FURIOUS_SCRIPT = "- {at: 0, anger_index: 92, arousal: 0.85, valence: -0.7, emotion: angry}\n"
FURIOUS_AT = 5.0
CUES_SCRIPT = (f"- {{at: 0, anger_index: 5}}\n"
               f"- {{at: {FURIOUS_AT}, anger_index: 95, emotion: angry}}\n")
# The edit a person tuning the persona might make: sit upright, whatever happens.
EDITED = """name: edited
states:
  idle: {lean: 0.0, brow_frown: 0.0, mouth_curve: 0.9}
"""


# --- runtimes: one per server configuration -----------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def speech_runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    """The long greeting, and a consenting customer scripted furious from the start."""
    config = Config.model_validate({"tts": {"greeting": GREETING}})
    rt = await start_runtime(config, tmp_path_factory.mktemp("speech") / "calls.db",
                             affect_script=parse_script(FURIOUS_SCRIPT))
    yield rt
    await rt.close()


@dataclass
class CueRuntime:
    rt: Runtime
    persona: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cue_runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CueRuntime]:
    """A persona file of its own to edit, and a customer calm, then furious at 5 s."""
    tmp = tmp_path_factory.mktemp("cues")
    persona = tmp / "persona.yaml"
    shutil.copy(PROJECT_ROOT / "configs" / "behaviors" / "support.yaml", persona)
    config = Config.model_validate({"avatar": {"behavior": str(persona)}})
    rt = await start_runtime(config, tmp / "calls.db", affect_script=parse_script(CUES_SCRIPT))
    yield CueRuntime(rt, persona)
    await rt.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def model_runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    """The default server: the real affect model."""
    rt = await start_runtime(Config(), tmp_path_factory.mktemp("model") / "calls.db")
    yield rt
    await rt.close()


# --- helpers ------------------------------------------------------------------------


async def play_until(call: VirtualCall, done: Callable[[], bool], within: float,
                     step: float = 0.1) -> bool:
    """Silence in `step`s until `done()`; False if `within` seconds of the call pass first."""
    end = call.t + within
    while not done():
        if call.t >= end - 1e-9:
            return False
        await call.play(seconds=step)
    return True


def speech(call: VirtualCall, event: str | None = None) -> list[dict[str, Any]]:
    return [m for m in call.transport.events("speech") if event is None or m["event"] == event]


def texts(call: VirtualCall, event: str) -> list[str]:
    return [m["text"] for m in speech(call, event)]


def noise_burst(seconds: float = 0.1, seed: int = 0) -> npt.NDArray[np.int16]:
    """Band-limited (1-4 kHz) noise with 5 ms ramps, loud as a word: a sound, not speech."""
    n = round(seconds * IN_RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / IN_RATE)
    spectrum[(freqs < 1000) | (freqs > 4000)] = 0
    x = np.fft.irfft(spectrum, n)
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * IN_RATE))
    x *= ramp * 0.1 / np.sqrt(np.mean(x**2))  # -20 dBFS RMS
    lead = np.zeros(round(0.2 * IN_RATE))  # silence before it, as before a word
    return (np.concatenate([lead, x]) * 32767).astype(np.int16)


def _silent_runs(times: Any, loud: Any) -> list[tuple[float, float, bool]]:
    """(start, seconds, loud audio came after) for each run of silent received frames."""
    runs, start = [], None
    for t, is_loud in zip(times, loud, strict=True):
        if not is_loud and start is None:
            start = float(t)
        elif is_loud and start is not None:
            runs.append((start, float(t) - start, True))
            start = None
    if start is not None:
        runs.append((start, float(times[-1]) - start, False))
    return runs


def _reply_starts(call: VirtualCall) -> list[dict[str, Any]]:
    """Speech starts after the greeting was cut short."""
    events = speech(call)
    cut = next((i for i, e in enumerate(events) if e.get("interrupted")), None)
    if cut is None:
        return []
    return [e for e in events[cut + 1 :] if e["event"] == "start"]


@dataclass
class Media:
    pcm: npt.NDArray[np.int16]  # 48 kHz mono
    frames: list[npt.NDArray[np.uint8]]  # rgb24
    fps: float

    @property
    def seconds(self) -> float:
        return len(self.pcm) / IN_RATE


@pytest.fixture(scope="module")
def grid(grid_clip: Path) -> Media:
    """The GRID clip a customer's camera and microphone send: a face saying a sentence."""
    with av.open(str(grid_clip)) as box:
        stream = box.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(stream)]
    resampler = av.AudioResampler(format="s16", layout="mono", rate=IN_RATE)
    chunks = []
    with av.open(str(grid_clip)) as box:
        for frame in box.decode(box.streams.audio[0]):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return Media(np.concatenate(chunks).astype(np.int16), frames, fps)


# --- turn-taking and replies --------------------------------------------------------


async def test_a_noise_burst_holds_the_avatar_and_its_sentence_resumes(
    speech_runtime: Runtime,
) -> None:
    call = VirtualCall(speech_runtime, consent=False)
    await call.start()
    assert await play_until(call, lambda: FIRST in texts(call, "start"), 15)
    began = speech(call, "start")[0]["t"]
    await call.play(seconds=began + 0.9 - call.t)  # mid-sentence
    onset = call.t + 0.2  # the burst's lead of silence
    await call.play(noise_burst())
    assert await play_until(call, lambda: FIRST in texts(call, "end"), 8), [
        (e["event"], e["text"], e.get("interrupted")) for e in speech(call)]
    await call.hang_up()

    assert not any(e.get("interrupted") for e in speech(call)), "a noise burst cut the avatar off"
    assert texts(call, "start").count(FIRST) == 1, "the resumed sentence started again"
    # it was held: the avatar's audio on the media clock went silent just after the
    # burst, for about `confirm_s`, then the same sentence went on
    frames = [f for f in call.transport.heard if onset < f.pts / IN_RATE < onset + 2.0]
    times = np.array([f.pts / IN_RATE for f in frames])
    loud = np.array([np.sqrt(np.mean(f.to_ndarray().astype(np.float64) ** 2)) > 300
                     for f in frames])
    gaps = _silent_runs(times, loud)
    confirm = speech_runtime.config.barge_in.confirm_s
    held = [(start, length) for start, length, resumed in gaps
            if start < onset + 0.35 and length >= 0.3 and resumed]
    assert held, gaps
    print(f"burst at {onset:.2f} s: held at {held[0][0]:.2f} s for {held[0][1]:.2f} s")
    # no network here: the hold comes within the onset detector's frames, and lasts
    # the confirmation window (plus the resume lead), not until the sentence's end
    assert held[0][0] < onset + 0.1 and held[0][1] < confirm + 0.3, held
    end = next(e["t"] for e in speech(call, "end") if e["text"] == FIRST)
    assert end > held[0][0] + held[0][1], "the sentence did not go on after the hold"


async def test_furious_customer_reply_starts_with_acknowledgement(
    speech_runtime: Runtime, data_dir: Path
) -> None:
    furious = speech_runtime.config.replies.furious
    call = VirtualCall(speech_runtime, consent=True)
    await call.start()
    assert await play_until(
        call, lambda: "furious" in [e["level"] for e in call.transport.events("affect")], 10
    ), "the scripted customer never became furious"
    await call.play(speech_pcm([data_dir / CLIP], gap_s=0.0))  # talks over the greeting
    said_at = call.t
    # the whole reply: one sentence per layer of the furious level
    assert await play_until(call, lambda: len(_reply_starts(call)) >= len(furious.layers), 20), [
        (e["event"], e["text"], e["t"], e.get("interrupted")) for e in speech(call)]
    await call.hang_up()

    replies = _reply_starts(call)
    print(f"turn ended {said_at:.2f} s; reply {[(round(e['t'], 2), e['text']) for e in replies]}")
    assert said_at < replies[0]["t"] < said_at + 3.0, "the reply did not follow the turn"
    text = [e["text"] for e in replies]
    assert text[0] in furious.acknowledge
    assert not any("calm down" in t.lower() for t in texts(call, "start"))
    assert set(text[1:4]) <= set(furious.confirm + furious.solve + furious.repair)
    assert (text[1], text[2], text[3]) in [
        (c, s, r) for c in furious.confirm for s in furious.solve for r in furious.repair]


# --- body language ------------------------------------------------------------------


async def test_cues_follow_the_customer_and_a_persona_edited_during_the_call(
    cue_runtime: CueRuntime, grid: Media
) -> None:
    call = VirtualCall(cue_runtime.rt, consent=True)
    await call.start()

    def cues() -> list[dict[str, Any]]:
        return call.transport.events("cues")

    await call.play(grid.pcm, video=grid.frames, fps=grid.fps)
    await call.play(seconds=0.5)
    assert len(cues()) > 5, "no cues messages"
    recent = [c for c in cues() if c["t"] > call.t - 2.0]
    print(f"cues: {len(recent) / 2.0:.1f} per second")
    assert len(recent) >= 2.0 * CUES_HZ - 1
    for c in cues():
        assert {"t", "lean", "gaze", "brow", "mouth"} <= set(c)
        assert isinstance(c["t"], float) and 0.0 <= c["lean"] <= 1.0
    calm = [c for c in cues() if c["level"] == "calm"]
    assert calm, "the customer starts calm"

    def affect_levels() -> list[str]:
        return [a["level"] for a in call.transport.events("affect")]

    assert await play_until(call, lambda: "furious" in affect_levels(), 20), \
        f"never furious: {affect_levels()[-5:]}"
    became = next(a["t"] for a in call.transport.events("affect") if a["level"] == "furious")
    assert became >= FURIOUS_AT  # the script's step, through smoothing and hysteresis
    assert await play_until(call, lambda: any(c["level"] == "furious" for c in cues()), 2), \
        "the cues did not follow the level"
    furious = [c for c in cues() if c["level"] == "furious"]
    assert furious[0]["t"] - became <= 1.0 / CUES_HZ + 1e-6  # at the next cue update
    calm_c, fur_c = calm[-1], furious[-1]
    print(f"calm cues {calm_c}\nfurious cues {fur_c}")
    assert fur_c["lean"] > calm_c["lean"] + 0.3
    assert fur_c["brow"]["frown"] > calm_c["brow"]["frown"] + 0.3
    assert fur_c["gaze"]["hold"] > calm_c["gaze"]["hold"]
    assert fur_c["mouth"]["curve"] < calm_c["mouth"]["curve"]
    assert fur_c["speech_rate"] < 1.0

    # a persona edit on disk reaches the live call, no restart: within one poll
    cue_runtime.persona.write_text(EDITED)
    edited_at = call.t
    assert await play_until(call, lambda: any(c["persona"] == "edited" for c in cues()), 3), \
        "the edited persona was not picked up"
    first = next(c for c in cues() if c["persona"] == "edited")
    print(f"persona reload seen {first['t'] - edited_at:.2f} s after the edit")
    assert first["t"] - edited_at <= POLL_S + 1.0 / CUES_HZ + 1e-6
    assert first["lean"] == 0.0 and first["brow"]["frown"] == 0.0
    assert first["level"] == "furious"  # same customer, new rules

    # a broken edit is refused and the last good persona stays
    cue_runtime.persona.write_text("name: broken\nstates:\n  idle: {lean: 5}\n")
    broken_at = call.t
    await call.play(seconds=1.5)
    assert call.session.cues is not None and call.session.cues.watcher is not None
    assert call.session.cues.watcher.error is not None, "the broken edit was never read"
    after = [c for c in cues() if c["t"] > broken_at + POLL_S + 1.0 / CUES_HZ]
    assert after and all(c["persona"] == "edited" for c in after)
    assert call.session.end_reason is None  # the call goes on
    await call.hang_up()


# --- consent ------------------------------------------------------------------------


def _analysed(rt: Runtime) -> dict[str, float]:
    def value(name: str, labels: dict[str, str]) -> float:
        v = rt.metrics.registry.get_sample_value(name, labels)
        assert v is not None, (name, labels)
        return v

    return {
        "face": value("avatar_agent_frames_analysed_total", {"kind": "face"}),
        "voice": value("avatar_agent_frames_analysed_total", {"kind": "voice"}),
        "speech_start": value("avatar_agent_customer_speech_events_total",
                              {"event": "speech_start"}),
    }


@pytest.mark.parametrize("consent", [True, False], ids=["consent", "no-consent"])
async def test_customer_is_analysed_only_with_consent(
    model_runtime: Runtime, grid: Media, consent: bool
) -> None:
    rt = model_runtime
    before = _analysed(rt)
    call = VirtualCall(rt, consent=consent)
    await call.start()
    await call.play(grid.pcm, video=grid.frames, fps=grid.fps)  # the clip, once
    after = _analysed(rt)
    # affect starts once the customer's baseline is set: a few updates' time more
    # (and as long again without consent, where none may ever come)
    await play_until(call, lambda: len(call.transport.events("affect")) >= 8, 5)
    await call.hang_up()

    affect = call.transport.events("affect")
    published = [e for e in call.published()
                 if isinstance(e, AffectUpdate) and e.call_id == call.call_id]
    stored = rt.store.store.affect_points(call.call_id)
    record = rt.store.store.get_call(call.call_id)
    assert record is not None and record.consent_analysis == consent
    face = after["face"] - before["face"]
    voice = after["voice"] - before["voice"]
    heard = after["speech_start"] - before["speech_start"]
    print(f"{grid.seconds:.2f} s clip: {face:.0f} faces, {voice:.0f} voice hops, "
          f"{heard:.0f} speech starts; {len(affect)} affect, {len(stored)} stored")
    if consent:
        assert len(affect) >= 8, f"only {len(affect)} affect messages"
        for e in affect:
            assert set(e) == {
                "type", "t", "arousal", "valence", "anger_index", "level", "emotion"
            }
            assert 0 <= e["arousal"] <= 1 and -1 <= e["valence"] <= 1
            assert 0 <= e["anger_index"] <= 100
            assert e["level"] in ("calm", "dissatisfied", "furious")
        rate = (len(affect) - 1) / (affect[-1]["t"] - affect[0]["t"])
        assert rate == pytest.approx(rt.config.affect.rate_hz, rel=0.05), \
            f"affect at {rate:.2f} Hz"
        assert len(published) == len(affect)  # the operators got the same updates
        # the whole emotion curve was stored, the last points as the call closed
        assert [(p["t"], p["level"]) for p in stored] == [(e["t"], e["level"]) for e in affect]
        assert [p["anger_index"] for p in stored] == pytest.approx(
            [e["anger_index"] for e in affect])
        # analysed as it came: faces at the analysis rate, the voice all along
        assert face >= 0.8 * rt.config.perception.face_fps * grid.seconds, face
        assert voice >= 100, f"only {voice} voice hops analysed in {grid.seconds:.1f} s"
        assert heard >= 1, "the customer's speech in the GRID clip was not detected"
    else:
        assert affect == [] and published == [] and stored == []
        # only voice activity runs without consent (turn-taking and barge-in)
        assert face == 0 and voice == 0
        assert heard >= 1, "turn-taking did not hear the customer"
