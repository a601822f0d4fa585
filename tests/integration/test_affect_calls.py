"""Callers the shipped model never trained on, through a live call's own code.

Each call is the real `CallSession` held in-process in virtual time
(tests/support/virtual_call.py): 20 ms WebRTC-format frames in, perception's loops
(voice step, speech encoder, face mesh and expression network), the call's affect
loop and core (windows, caller reference, smoothing, levels) and the operators'
escalation watcher, each waking on the call's clock: no look-ahead, no sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
import pytest_asyncio

from avatar_agent.core.config import Config
from avatar_agent.core.events import Escalation
from avatar_agent.runtime import Runtime
from tests.support.virtual_call import VirtualCall, speech_pcm, start_runtime


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    rt = await start_runtime(Config(), tmp_path_factory.mktemp("db") / "calls.db")
    yield rt
    await rt.close()


def _escalations(call: VirtualCall) -> list[float]:
    return [e.t for e in call.published() if isinstance(e, Escalation)]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_caller_angry_from_the_first_word_escalates_and_calm_speech_does_not(
    runtime: Runtime, held_out_speakers: set[str], data_dir: Path
) -> None:
    actor = sorted(s for s in held_out_speakers if s.startswith("ravdess:"))[0].split(":")[1]
    folder = data_dir / "speech_emotion" / "ravdess_full" / f"Actor_{actor}"
    angry = sorted(folder.glob("03-01-05-02-*.flac")) + sorted(folder.glob("03-01-05-01-*.flac"))
    calm = sorted(folder.glob("03-01-01-*.flac")) + sorted(folder.glob("03-01-02-*.flac"))

    upset = VirtualCall(runtime, consent=True)
    await upset.start(escalations=True)
    await upset.play(speech_pcm(angry[:4]))  # some 15 s of anger from the start
    anger = [m["anger_index"] for m in upset.transport.events("affect")]
    levels = {m["level"] for m in upset.transport.events("affect")}
    print(f"actor {actor} angry: escalations at {_escalations(upset)}, "
          f"anger {np.round(anger[::4], 0)}")
    assert _escalations(upset) and _escalations(upset)[0] <= 10.0
    assert levels & {"furious", "dissatisfied"}
    assert upset.session.affect is not None
    reference = upset.session.affect.core.reference
    assert reference.refused > reference.accepted  # anger never became their "normal"
    await upset.hang_up()

    steady = VirtualCall(runtime, consent=True)
    await steady.start(escalations=True)
    await steady.play(speech_pcm(calm))  # every neutral and calm clip, ~1 min
    anger = [m["anger_index"] for m in steady.transport.events("affect")]
    levels = {m["level"] for m in steady.transport.events("affect")}
    print(f"actor {actor} calm: max anger {max(anger):.0f}, levels {sorted(levels)}")
    # read whenever the window holds enough speech (4 Hz then; the pauses between
    # sentences give none): 140 updates in this minute and a half when measured
    assert len(anger) >= 100
    assert not _escalations(steady)
    assert "furious" not in levels
    # a calm caller taught the reference, so later windows are read against them
    assert steady.session.affect is not None
    assert steady.session.affect.core.reference.voice_s > 5.0
    await steady.hang_up()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_silent_neutral_face_stays_calm_for_20_seconds(
    runtime: Runtime, held_out_speakers: set[str], data_dir: Path
) -> None:
    unseen = sorted(s.split(":")[1] for s in held_out_speakers if s.startswith("mead:"))
    name = f"{(unseen or ['M030'])[0]}_front_neutral_level1_001.mp4"
    clip = data_dir / "face_video" / "mead" / name
    with av.open(str(clip)) as box:
        stream = box.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(stream)]
    # played forwards and backwards, at the camera's rate, for 20 s of silence
    call = VirtualCall(runtime, consent=True)
    await call.start(escalations=True)
    await call.play(seconds=20.0, video=frames + frames[::-1], fps=fps)
    updates = call.transport.events("affect")
    print(f"neutral face: max anger {max(u['anger_index'] for u in updates):.0f}, "
          f"levels {sorted({u['level'] for u in updates})}")
    assert len(updates) >= 70  # it was read all along, not skipped
    assert {u["level"] for u in updates} == {"calm"} and not _escalations(call)
    await call.hang_up()


def test_evaluate_call_protocol_writes_calls_and_repeats_itself(
    tmp_path: Path, data_dir: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    emodb = data_dir / "speech_emotion" / "emodb"
    for p in sorted(emodb.glob("03*.flac"))[::3] + sorted(emodb.glob("08*.flac"))[::3]:
        (clips / p.name).symlink_to(p)
    reports = []
    for k in range(2):
        out = tmp_path / f"r{k}" / "report.json"
        res = subprocess.run(
            [sys.executable, "-m", "avatar_agent.cli", "evaluate", "--data", str(clips),
             "--out", str(out), "--device", "cpu", "--cache", str(tmp_path / "cache")],
            capture_output=True, text=True, timeout=600,
        )
        assert res.returncode == 0, res.stderr
        assert "angry start" in res.stdout
        reports.append(json.loads(out.read_text()))
    a, b = reports
    assert a["protocol"] == "call"
    calls = a["calls"]["overall"]
    assert calls["angry_first"]["n_speakers"] == 2
    assert calls["calm_only"]["hours"] > 0
    assert 0.0 <= calls["calibration"]["ece"] <= 1.0
    assert {"angry", "neutral"} <= set(calls["level_per_emotion"])
    assert calls["per_clip_causal"]["n_clips"] == a["n_clips"]
    assert a["calls"]["curves"] and a["calls"]["curves"][0]["t"]
    for r in reports:
        r.pop("model", None)
        for row in r["per_clip"] + r["skipped"]:
            row["file"] = Path(row["file"]).name
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
