"""A closed peer never starts ICE consent checks that run for ever (aioice race)."""

from __future__ import annotations

import asyncio

import aioice
from aiortc import RTCPeerConnection

from avatar_agent.transport.webrtc import _ice_connections, no_consent_checks_after_close


async def test_consent_checks_started_after_close_end_at_once() -> None:
    conn = aioice.Connection(ice_controlling=True)
    conn.remote_password = "x" * 22
    no_consent_checks_after_close(conn)
    # open: the checks run (the first waits ~5 s before its request)
    running = asyncio.create_task(conn.query_consent())
    await asyncio.sleep(0.05)
    assert not running.done()
    running.cancel()
    # closing, as when connect() resumes after close(): nothing is left running
    conn._closing = True
    late = asyncio.create_task(conn.query_consent())
    await asyncio.wait_for(late, 1.0)
    assert late.done() and late.exception() is None
    await conn.close()


async def test_the_peer_s_ice_connections_are_found() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    pc.addTransceiver("video")
    pc.createDataChannel("agent")
    await pc.setLocalDescription(await pc.createOffer())
    found = _ice_connections(pc)
    assert found and all(isinstance(c, aioice.Connection) for c in found)
    assert len({id(c) for c in found}) == len(found)
    await pc.close()
