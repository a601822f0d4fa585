"""Bad requests get clear JSON errors and the server keeps serving."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from avatar_agent.testing.client import CustomerClient

GOOD_CONSENT = {"analysis": True}


async def _post(url: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        if isinstance(kw.get("json"), dict) and "sdp" in kw["json"]:
            async with http.post(url + "/api/join") as r:  # a join token, as the page has
                kw["json"] = {**kw["json"], "join_token": (await r.json())["join_token"]}
        async with http.post(url + "/api/calls", **kw) as r:
            assert r.content_type == "application/json"
            return r.status, await r.json()


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"data": b"{not json"}, 400, "not valid JSON"),
        ({"data": b"\xff\xfe\x00"}, 400, "not valid JSON"),
        ({"json": ["sdp"]}, 400, "JSON object"),
        ({"json": {"type": "offer"}}, 400, "'sdp'"),
        ({"json": {"sdp": 5, "type": "offer"}}, 400, "'sdp'"),
        ({"json": {"sdp": "hello", "type": "offer"}}, 400, "v=0"),
        ({"json": {"sdp": "v=0\r\nm=garbage\r\n", "type": "offer"}}, 400, "invalid SDP"),
        ({"json": {"sdp": "v=0\r\n", "type": "answer"}}, 400, "'type'"),
        ({"json": {"sdp": "v=0\r\n", "type": "offer", "consent": "yes"}}, 400, "consent"),
        ({"json": {"sdp": "v=0\r\n" + "a" * 70_000, "type": "offer"}}, 413, "over"),
    ],
    ids=[
        "non-json",
        "binary",
        "array",
        "no-sdp",
        "sdp-not-str",
        "sdp-garbage",
        "sdp-broken",
        "wrong-type",
        "bad-consent",
        "too-big",
    ],
)
async def test_bad_offer(
    live_server: Any, kwargs: dict[str, Any], status: int, needle: str
) -> None:
    code, body = await _post(live_server.url, **kwargs)
    assert code == status
    assert needle in body["error"]


async def test_offer_without_media_sections(live_server: Any) -> None:
    # a data-channel-only offer: valid SDP, but nothing to send the avatar on
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("agent")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        code, body = await _post(
            live_server.url, json={"sdp": pc.localDescription.sdp, "type": "offer"}
        )
    finally:
        await pc.close()
    assert code == 400
    assert "no audio or video" in body["error"]


async def test_unknown_call_and_route(live_server: Any) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.delete(live_server.url + "/api/calls/nope") as r:
            assert r.status == 404
            assert "nope" in (await r.json())["error"]
        async with http.get(live_server.url + "/api/nothing-here") as r:
            assert r.status == 404
            assert "error" in await r.json()


async def test_server_still_serves_after_bad_input(live_server: Any) -> None:
    await _post(live_server.url, data=b"garbage")
    async with aiohttp.ClientSession() as http:
        client = CustomerClient(live_server.url, None, send_video=False, send_audio=False)
        try:
            await client.connect(http)
            assert await client.wait_for(lambda: len(client.rx.video_times) > 10, 10)
            assert await client.hangup(http) == 200
        finally:
            await client.close()


async def test_health_and_metrics(live_server: Any) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(live_server.url + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with http.get(live_server.url + "/metrics") as r:
            text = await r.text()
    for name in (
        "avatar_agent_calls_live",
        "avatar_agent_frames_out_total",
        "avatar_agent_frames_in_total",
        "avatar_agent_frames_dropped_total",
        "avatar_agent_stage_seconds_bucket",
    ):
        assert name in text, name
