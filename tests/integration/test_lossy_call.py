"""A customer on a lossy network (5 % of RTP packets dropped and 5 % delayed, both
ways, inside the customer's own peer) keeps its call: the avatar's video keeps coming
and its lips stay in time with its voice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from avatar_agent.testing.client import CustomerClient
from avatar_agent.testing.impair import Impairment
from avatar_agent.testing.measure import MediaRecorder
from avatar_agent.testing.measure_call import analyse_lipsync

SECONDS = 10.0


async def test_lossy_customer_keeps_call_video_and_lipsync(
    live_server: Any, grid_clip: Path
) -> None:
    impair = Impairment(loss=0.05, late=0.05)
    recorder = MediaRecorder()
    client = CustomerClient(live_server.url, grid_clip, consent=True, recorder=recorder,
                            impair=impair)
    async with aiohttp.ClientSession() as http:
        try:
            await client.connect(http)
            assert await client.wait_for(lambda: client.pc.connectionState == "connected", 15)
            connected = time.time()
            await asyncio.sleep(SECONDS)
            assert client.pc.connectionState == "connected"
            assert client.call_id is not None
            async with http.get(live_server.url + "/healthz") as r:
                assert (await r.json())["calls"] >= 1  # the server kept the call
            now = time.monotonic()
            fps = client.rx.fps(now - 3.0, now)
            assert await client.hangup(http) == 200
        finally:
            await client.close()
    lip = await asyncio.get_running_loop().run_in_executor(
        None, analyse_lipsync, recorder, connected)
    print(f"lossy call: {impair.dropped} dropped, {impair.delayed} late, {impair.passed} "
          f"passed; video {fps:.1f} fps over the last 3 s; lip-sync {lip.offset_ms:+.0f} ms "
          f"(r={lip.correlation:.2f}, {lip.face_frames} frames)")
    assert impair.dropped > 20 and impair.delayed > 20
    assert fps >= 20, f"the avatar's video did not recover ({fps:.1f} fps)"
    assert abs(lip.offset_ms) <= 45, lip
