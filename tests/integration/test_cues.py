"""Body language in a live call: cues follow a scripted customer and a persona edited on disk."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from avatar_agent.client import CustomerClient, spawn_server, stop_server

REPO = Path(__file__).resolve().parents[2]
FURIOUS_AT = 5.0
SCRIPT = f"- {{at: 0, anger_index: 5}}\n- {{at: {FURIOUS_AT}, anger_index: 95, emotion: angry}}\n"
# The edit a person tuning the persona might make: sit upright, whatever happens.
EDITED = """name: edited
states:
  idle: {lean: 0.0, brow_frown: 0.0, mouth_curve: 0.9}
"""


class CueServer:
    def __init__(self, url: str, persona: Path) -> None:
        self.url = url
        self.persona = persona


@pytest.fixture(scope="module")
def cue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CueServer]:
    tmp = tmp_path_factory.mktemp("cues")
    persona = tmp / "persona.yaml"
    shutil.copy(REPO / "configs" / "behaviors" / "support.yaml", persona)
    (tmp / "script.yaml").write_text(SCRIPT)
    extra = f"avatar:\n  behavior: {persona}\naffect:\n  script: {tmp / 'script.yaml'}\n"
    try:
        proc, url = spawn_server(tmp, REPO, config_yaml=extra)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield CueServer(url, persona)
    stop_server(proc)


def of_type(client: CustomerClient, kind: str) -> list[dict[str, Any]]:
    return [e for e in client.rx.events if e.get("type") == kind]


async def test_cues_follow_the_customer_and_a_persona_edited_during_the_call(
    cue_server: CueServer, grid_clip: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(cue_server.url, grid_clip, consent=True)
        try:
            await client.connect(http)
            assert await client.wait_for(lambda: len(of_type(client, "cues")) > 5, 15), \
                "no cues messages"
            await asyncio.sleep(2.0)
            cues = of_type(client, "cues")
            recent = [c for c in cues if c["_received"] > time.monotonic() - 2.0]
            print(f"cues: {len(recent) / 2.0:.1f} per second")
            assert len(recent) / 2.0 >= 5.0
            for c in cues:
                assert {"t", "lean", "gaze", "brow", "mouth"} <= set(c)
                assert isinstance(c["t"], float) and 0.0 <= c["lean"] <= 1.0
            calm = [c for c in cues if c["level"] == "calm"]
            assert calm, "the customer starts calm"

            assert await client.wait_for(
                lambda: any(a["level"] == "furious" for a in of_type(client, "affect")), 20
            ), f"never furious: {[a['level'] for a in of_type(client, 'affect')][-5:]}"
            assert await client.wait_for(
                lambda: any(c["level"] == "furious" for c in of_type(client, "cues")), 2
            ), "the cues did not follow the level"
            furious = [c for c in of_type(client, "cues") if c["level"] == "furious"]
            calm_c, fur_c = calm[-1], furious[-1]
            print(f"calm cues {calm_c}\nfurious cues {fur_c}")
            assert fur_c["lean"] > calm_c["lean"] + 0.3
            assert fur_c["brow"]["frown"] > calm_c["brow"]["frown"] + 0.3
            assert fur_c["gaze"]["hold"] > calm_c["gaze"]["hold"]
            assert fur_c["mouth"]["curve"] < calm_c["mouth"]["curve"]
            assert fur_c["speech_rate"] < 1.0

            # a persona edit on disk reaches the live call, no restart
            cue_server.persona.write_text(EDITED)
            edited_at = time.monotonic()
            assert await client.wait_for(
                lambda: any(c["persona"] == "edited" for c in of_type(client, "cues")), 3
            ), "the edited persona was not picked up"
            first = next(c for c in of_type(client, "cues") if c["persona"] == "edited")
            print(f"persona reload seen {first['_received'] - edited_at:.2f} s after the edit")
            assert first["lean"] == 0.0 and first["brow"]["frown"] == 0.0
            assert first["level"] == "furious"  # same customer, new rules

            # a broken edit is refused and the last good persona stays
            cue_server.persona.write_text("name: broken\nstates:\n  idle: {lean: 5}\n")
            await asyncio.sleep(1.5)
            last = of_type(client, "cues")[-1]
            assert last["persona"] == "edited"
            assert client.pc.connectionState == "connected"
            assert await client.hangup(http) == 200
        finally:
            await client.close()
