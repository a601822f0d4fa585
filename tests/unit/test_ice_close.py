"""A closed peer never starts ICE consent checks that run for ever (aioice race)."""

from __future__ import annotations

import asyncio

import aioice
from aiortc import RTCPeerConnection

from avatar_agent.transport.webrtc import (
    _ice_connections,
    _ice_transports,
    close_peer,
    no_consent_checks_after_close,
)


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


async def test_a_closed_peer_s_ice_transport_does_not_start() -> None:
    """aiortc's connect step, resuming after close(), starts the ICE transport of the
    next transceiver and the data channel's association; on closed transports those
    raised in a task nobody awaits."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    offerer.addTransceiver("audio")
    offerer.createDataChannel("agent")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    ices = _ice_transports(answerer)
    assert ices
    params = ices[0].iceGatherer.getLocalParameters()
    await close_peer(answerer)
    for ice in ices:
        assert ice.state == "closed"
        await ice.start(params)  # what the connect step does next: no InvalidStateError
    assert answerer.sctp is not None
    await answerer.sctp.start(answerer.sctp.getCapabilities(), 5000)  # no ConnectionError
    await offerer.close()
