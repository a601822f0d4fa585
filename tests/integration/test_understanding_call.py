"""The agent understands a customer over real WebRTC: a real recording streamed by a
headless customer (aiortc) into `avatar-agent serve`, with the operator API beside it.

The customer says "Kids are talking by the door" (RAVDESS); the example knowledge
base has an entry whose question is that sentence. The page gets the transcript and
the answer as captions; the operator's timeline and export carry the customer's words.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from avatar_agent.core.config import PROJECT_ROOT
from avatar_agent.testing import CustomerClient
from tests.integration.test_operators_api import bearer, login, serve_with_operator

KIDS = "speech_emotion/ravdess_full/Actor_01/03-01-01-01-01-01-01.flac"
EXAMPLE = PROJECT_ROOT / "configs" / "knowledge" / "example.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("understanding")
    for url, _db in serve_with_operator(tmp, ""):  # the default config: example knowledge
        yield url


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The clip after 5 s of silence (the greeting), then 3 s of silence (the end of
    the turn), as a WAV file the customer streams."""
    out = tmp_path_factory.mktemp("spoken") / "kids.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(data_dir / KIDS), "-af",
                    "adelay=5000:all=1,apad=pad_dur=3", "-ar", "48000", str(out)], check=True)
    return out


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_a_spoken_question_reaches_the_page_the_timeline_and_is_answered(
    server: str, spoken: Path, http: aiohttp.ClientSession
) -> None:
    door = next(e for e in yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
                if e["id"] == "door-noise")
    client = CustomerClient(server, spoken, consent=False)
    try:
        call_id = await client.connect(http)

        def transcripts() -> list[dict[str, object]]:
            return [e for e in client.rx.events if e.get("type") == "transcript"]

        assert await client.wait_for(lambda: transcripts(), 25), client.rx.events[-5:]
        (heard,) = transcripts()
        assert heard["role"] == "customer" and heard["final"] is True
        assert "kids are talking by the door" in str(heard["text"]).lower()
        assert await client.wait_for(lambda: door["confirm"] in client.rx.speech("start"), 10)
        assert await client.wait_for(
            lambda: " ".join(client.rx.speech("start")).endswith(door["answer"].strip()), 10
        ), client.rx.speech("start")

        token = await login(http, server)
        async with http.get(f"{server}/api/calls/{call_id}/timeline",
                            headers=bearer(token)) as r:
            tl = await r.json()
        rows = [(row["role"], row["text"]) for row in tl["transcript"]]
        assert ("customer", heard["text"]) in rows
        assert ("agent", door["confirm"]) in rows
        assert rows.index(("customer", heard["text"])) < rows.index(("agent", door["confirm"]))
        async with http.get(f"{server}/api/calls/{call_id}/export.csv",
                            headers=bearer(token)) as r:
            assert str(heard["text"]) in await r.text()
        await client.hangup(http)
    finally:
        await client.close()
