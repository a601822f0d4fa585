"""The agent understands its customer: a real recording through a whole call held
in-process, in virtual time (tests/support/virtual_call.py), with the real speech
recognition, knowledge base, voice and escalation watcher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import yaml

from avatar_agent.core.config import PROJECT_ROOT, Config
from avatar_agent.core.events import Escalation, Transcript
from avatar_agent.runtime import Runtime
from tests.support.virtual_call import VirtualCall, speech_pcm, start_runtime

pytestmark = pytest.mark.asyncio(loop_scope="module")

KIDS = "speech_emotion/ravdess_full/Actor_01/03-01-01-01-01-01-01.flac"  # neutral
GREETING = "Hello."
EXAMPLE = PROJECT_ROOT / "configs" / "knowledge" / "example.yaml"
DOOR = "door-noise"  # the example's entry whose questions are the RAVDESS statements


async def _runtime(tmp: Path, without: str | None = None) -> Runtime:
    """The example knowledge base, or the same without one entry."""
    entries = [e for e in yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
               if e["id"] != without]
    (tmp / "kb.yaml").write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    config = Config.model_validate({
        "tts": {"greeting": GREETING},
        "knowledge": {"path": str(tmp / "kb.yaml"), "min_score": 0.45},
    })
    return await start_runtime(config, tmp / "calls.db", model=False, understanding=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kb_runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    rt = await _runtime(tmp_path_factory.mktemp("kb"))
    yield rt
    await rt.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def unrelated_runtime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    rt = await _runtime(tmp_path_factory.mktemp("unrelated"), without=DOOR)
    yield rt
    await rt.close()


async def _say_kids(call: VirtualCall, data_dir: Path, within: float) -> None:
    await call.play(seconds=2.0)  # the greeting
    await call.play(speech_pcm([data_dir / KIDS], gap_s=0.0))
    end = call.t + within
    while call.t < end and not call.transport.events("transcript"):
        await call.play(seconds=0.1)
    await call.play(seconds=6.0)  # the answer


async def test_a_spoken_question_is_transcribed_and_answered(
    kb_runtime: Runtime, data_dir: Path
) -> None:
    call = VirtualCall(kb_runtime, consent=False)  # no consent: heard, but no emotion
    await call.start()
    await _say_kids(call, data_dir, 10)
    await call.hang_up()

    (page,) = call.transport.events("transcript")
    assert page["role"] == "customer" and page["final"] is True
    assert "kids are talking by the door" in page["text"].lower()
    assert 1.5 < page["t_start"] < page["t_end"] < call.t
    assert not call.transport.events("affect")
    bus = [e for e in call.published() if isinstance(e, Transcript)]
    assert [e.text for e in bus] == [page["text"]]
    said = [m["text"] for m in call.transport.events("speech") if m["event"] == "start"]
    door = next(e for e in yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
                if e["id"] == DOOR)
    # confirm, then solve: the captions carry the answer sentence by sentence
    assert " ".join(said[1:]) == f"{door['confirm']} {door['answer'].strip()}", said
    # the call's stored timeline holds the customer's words
    rows = await kb_runtime.store.run(kb_runtime.store.store.events, call.call_id)
    assert [r["text"] for r in rows if r["kind"] == "transcript"] == [page["text"]]


async def test_an_unanswerable_question_offers_a_person_and_escalates_with_the_words(
    unrelated_runtime: Runtime, data_dir: Path
) -> None:
    call = VirtualCall(unrelated_runtime, consent=False)
    await call.start(escalations=True)
    await _say_kids(call, data_dir, 10)
    await call.hang_up()

    said = [m["text"] for m in call.transport.events("speech") if m["event"] == "start"]
    # the agent says honestly that it cannot answer, and that a person is coming
    assert " ".join(said[1:]) == unrelated_runtime.config.answer.unanswered, said
    (esc,) = [e for e in call.published() if isinstance(e, Escalation)]
    assert esc.reason == "unanswered"
    customer = [r for r in esc.context["transcript"] if r["role"] == "customer"]
    assert len(customer) == 1 and "kids are talking" in customer[0]["text"].lower()
    assert "kids are talking" in esc.detail.lower()


async def test_asking_for_a_person_in_words_escalates_as_a_request(
    kb_runtime: Runtime
) -> None:
    """No recording here says it, so the customer's voice is the server's own (Piper)."""
    (utt,) = kb_runtime.tts.synthesize("Can I talk to a human, please?")
    assert utt.sample_rate == 48000
    call = VirtualCall(kb_runtime, consent=False)
    await call.start(escalations=True)
    await call.play(seconds=2.0)
    await call.play(np.concatenate([utt.pcm, np.zeros(48000, np.int16)]))
    end = call.t + 10
    while call.t < end and not any(isinstance(e, Escalation) for e in call.published()):
        await call.play(seconds=0.1)
    await call.play(seconds=4.0)
    await call.hang_up()

    (esc,) = [e for e in call.published() if isinstance(e, Escalation)]
    assert esc.reason == "customer_request"
    said = [m["text"] for m in call.transport.events("speech") if m["event"] == "start"]
    assert " ".join(said[1:]) == kb_runtime.config.answer.handoff, said
    (words,) = [r for r in esc.context["transcript"] if r["role"] == "customer"]
    assert "human" in words["text"].lower()
