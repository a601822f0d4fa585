"""A real call over WebRTC: an aiortc customer streams a GRID clip to a real server."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from avatar_agent.core.config import Config
from avatar_agent.testing.client import CustomerClient

GREETING = Config().tts.greeting
# The GRID customer talks from the start and barges in, so only the greeting's first
# sentence is sure to be spoken.
FIRST_SENTENCE = GREETING.split(". ")[0]


async def _health(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "/healthz") as r:
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


def _row(db: Path, call_id: str) -> tuple[Any, ...] | None:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row: tuple[Any, ...] | None = con.execute(
            "select ended_at, end_reason, consent_analysis from calls where id = ?", (call_id,)
        ).fetchone()
        return row
    finally:
        con.close()


def _metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} missing from /metrics")


async def test_real_call_end_to_end(live_server: Any, grid_clip: Path) -> None:
    async with aiohttp.ClientSession() as http:
        baseline = await _health(http, live_server.url)
        client = CustomerClient(live_server.url, grid_clip)
        try:
            call_id = await client.connect(http)
            assert (await _health(http, live_server.url))["calls"] == baseline["calls"] + 1
            assert await client.wait_for(lambda: client.rx.video_times, 10), "no avatar video"
            first = client.rx.video_times[0]
            assert await client.wait_for(
                lambda: client.rx.video_times[-1] >= first + 5.5, 15
            ), "the avatar video stopped"
            fps = client.rx.fps(first + 0.5, first + 5.5)
            if fps < 25:  # say where the frames went: skipped by the server or lost after
                async with http.get(live_server.url + "/metrics") as r:
                    drops = [ln for ln in (await r.text()).splitlines() if "dropped_total" in ln]
                pytest.fail(f"avatar video at {fps:.1f} fps; server: {drops}")
            assert client.rx.video_size == (640, 480)
            async with http.get(live_server.url + "/metrics") as r:
                metrics = await r.text()
            # the avatar went out through the encoder tuned for it, not aiortc's default
            assert _metric(metrics, 'avatar_agent_video_encoders_total{encoder="avatar_vp8"}') >= 1
            heard = lambda: FIRST_SENTENCE in " ".join(client.rx.speech("start"))  # noqa: E731
            assert await client.wait_for(heard, 5)
            assert client.rx.audio_frames > 100
            assert client.rx.audio_peak_rms > 500, "the greeting is not audible"
            for ev in client.rx.events:
                # every event is timed on the call's media clock; a transcript spans a turn
                keys = ("t_start", "t_end") if ev["type"] == "transcript" else ("t",)
                for k in keys:
                    assert isinstance(ev[k], float) and ev[k] >= 0, ev
            assert _row(live_server.db, call_id)[:2] == (None, None)  # type: ignore[index]
            assert await client.hangup(http) == 200
        finally:
            await client.close()
        ended_at, reason, consent = _row(live_server.db, call_id)  # type: ignore[misc]
        assert ended_at is not None and reason == "hangup" and consent == 1
        # nothing of the call is left running in the server
        deadline = time.monotonic() + 10
        while True:
            h = await _health(http, live_server.url)
            if h["calls"] == baseline["calls"] and h["tasks"] <= baseline["tasks"]:
                break
            assert time.monotonic() < deadline, f"left running: {h} vs {baseline}"
            await asyncio.sleep(0.2)
        async with http.delete(f"{live_server.url}/api/calls/{call_id}") as r:
            assert r.status == 404


@pytest.mark.parametrize(
    ("video", "audio"),
    [(False, True), (True, False), (False, False)],
    ids=["audio-only", "video-only", "no-media"],
)
async def test_partial_media_still_gets_a_talking_avatar(
    live_server: Any, grid_clip: Path, video: bool, audio: bool
) -> None:
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(
            live_server.url, grid_clip, send_video=video, send_audio=audio, consent=False
        )
        try:
            call_id = await client.connect(http)
            assert await client.wait_for(lambda: len(client.rx.video_times) > 30, 10)
            assert await client.wait_for(
                lambda: FIRST_SENTENCE in " ".join(client.rx.speech("start")), 10
            )
            assert await client.wait_for(lambda: client.rx.audio_peak_rms > 500, 5)
            assert await client.hangup(http) == 200
        finally:
            await client.close()
        assert _row(live_server.db, call_id)[1:] == ("hangup", 0)  # type: ignore[index]


async def test_peer_that_vanishes_is_cleaned_up(live_server: Any, grid_clip: Path) -> None:
    """Closing the peer without hanging up (tab closed) ends the call on the server."""
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(live_server.url, grid_clip)
        call_id = await client.connect(http)
        assert await client.wait_for(lambda: client.rx.video_times, 10)
        t0 = time.monotonic()
        await client.close()
        while _row(live_server.db, call_id)[0] is None:  # type: ignore[index]
            assert time.monotonic() - t0 < 30, "call not cleaned up within 30 s"
            await asyncio.sleep(0.2)
        reason = _row(live_server.db, call_id)[1]  # type: ignore[index]
        assert reason != "hangup"


async def test_silent_page_is_given_up_as_lost(live_server: Any, grid_clip: Path) -> None:
    """A page whose heartbeats stop (network gone) is ended within the heartbeat timeout."""
    timeout = Config().call.heartbeat_timeout_s
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(live_server.url, grid_clip)
        try:
            call_id = await client.connect(http)
            assert await client.wait_for(lambda: client.rx.video_times, 10)
            # the channel is open both ways (the page pings as soon as it opens)
            assert await client.wait_for(
                lambda: client.channel.readyState == "open" and client.rx.events, 10)
            for task in client._tasks:  # the network drops: no more heartbeats arrive
                task.cancel()
            t0 = time.monotonic()
            while _row(live_server.db, call_id)[0] is None:  # type: ignore[index]
                assert time.monotonic() - t0 < timeout + 5, "silent call not ended"
                await asyncio.sleep(0.2)
            assert _row(live_server.db, call_id)[1] == "connection_lost"  # type: ignore[index]
            assert time.monotonic() - t0 >= timeout - 2.5
        finally:
            await client.close()
