"""Admission against a real server: join tokens, per-client limits, and a flood from
one client that never turns away a customer from another.

Every test process connects from 127.0.0.1; the real customer here connects from
127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback), a different client to the
server, as a customer on another network would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from avatar_agent.testing.client import CustomerClient
from tests.support.server import spawn_server, stop_server

REPO = Path(__file__).resolve().parents[2]
TTL_S = 2.0


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("admission")
    (tmp / "script.yaml").write_text("- {at: 0, anger_index: 10}\n")
    try:
        proc, base = spawn_server(tmp, REPO, config_yaml=(
            f"affect:\n  script: {tmp / 'script.yaml'}\n"
            f"server:\n  max_calls: 4\n  max_half_open: 3\n  join_token_ttl_s: {TTL_S}\n"
            "  max_half_open_per_client: 2\n  joins_per_client_per_min: 30\n"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield base
    stop_server(proc)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _offer() -> tuple[RTCPeerConnection, str]:
    """A real offer from a peer that will never connect (it never takes the answer)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendrecv")
    pc.addTransceiver("video", direction="sendrecv")
    pc.createDataChannel("agent")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, str(pc.localDescription.sdp)


async def _join(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.post(url + "/api/join", json={}) as r:
        return r.status, await r.json()


async def _call(http: aiohttp.ClientSession, url: str, sdp: str,
                token: str | None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"sdp": sdp, "type": "offer"}
    if token is not None:
        body["join_token"] = token
    async with http.post(url + "/api/calls", json=body) as r:
        return r.status, await r.json()


async def test_an_offer_needs_a_fresh_single_use_join_token(
    url: str, http: aiohttp.ClientSession
) -> None:
    pc, sdp = await _offer()
    try:
        status, joined = await _join(http, url)
        assert status == 201 and joined["expires_in_s"] == TTL_S
        for token in (None, "made-up", ""):
            status, body = await _call(http, url, sdp, token)
            assert status == 403 and "join_token" in body["error"]
        # spent once (on an offer refused for its SDP), it is gone
        status, _ = await _call(http, url, sdp.replace("a=fingerprint", "a=x"),
                                joined["join_token"])
        assert status == 400
        status, _ = await _call(http, url, sdp, joined["join_token"])
        assert status == 403
        _, late = await _join(http, url)
        await asyncio.sleep(TTL_S + 0.5)
        status, _ = await _call(http, url, sdp, late["join_token"])
        assert status == 403
    finally:
        await pc.close()


async def test_a_flood_from_one_client_leaves_room_for_another(
    url: str, http: aiohttp.ClientSession, grid_clip: Path
) -> None:
    peers: list[RTCPeerConnection] = []
    statuses: list[int] = []
    try:
        # the flood: offers that never connect, as fast as this client is let to send
        for _ in range(8):
            pc, sdp = await _offer()
            peers.append(pc)
            status, joined = await _join(http, url)
            if status != 201:
                statuses.append(status)
                continue
            status, _ = await _call(http, url, sdp, joined["join_token"])
            statuses.append(status)
        assert statuses.count(201) == 2, statuses  # two half-open calls, no more
        assert set(statuses) <= {201, 429}, statuses

        # a customer from another address still gets in, and the avatar reaches it
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=other) as customer_http:
            client = CustomerClient(url, grid_clip, consent=False)
            try:
                await client.connect(customer_http)
                assert await client.wait_for(lambda: len(client.rx.video_times) >= 10, 30)
                await client.hangup(customer_http)
            finally:
                await client.close()
    finally:
        for pc in peers:
            await pc.close()
