"""Offers aiortc would choke on, or that would make the server probe many addresses,
are refused before aiortc sees them; real offers from aiortc pass."""

from __future__ import annotations

import re

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from avatar_agent.transport.sdp import offer_problem


@pytest.fixture
async def offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendrecv")
    pc.addTransceiver("video", direction="sendrecv")
    pc.createDataChannel("agent")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


def test_a_real_offer_passes(offer: str) -> None:
    assert offer_problem(offer, max_candidates=16) is None


def test_no_fingerprint_is_refused(offer: str) -> None:
    stripped = re.sub(r"a=fingerprint:[^\r\n]*\r?\n", "", offer)
    assert "fingerprint" in (offer_problem(stripped, 16) or "")


def test_no_ice_credentials_is_refused(offer: str) -> None:
    stripped = re.sub(r"a=ice-pwd:[^\r\n]*\r?\n", "", offer)
    assert "ICE credentials" in (offer_problem(stripped, 16) or "")


def test_too_many_candidates_are_refused(offer: str) -> None:
    extra = "".join(f"a=candidate:{i} 1 udp 2130706431 198.51.100.{i % 250} {10000 + i}"
                    " typ host\r\n"
                    for i in range(700))
    flooded = offer.replace("a=mid:0\r\n", "a=mid:0\r\n" + extra, 1)
    assert "candidates" in (offer_problem(flooded, 16) or "")


def test_too_many_media_sections_are_refused(offer: str) -> None:
    head, sep, rest = offer.partition("m=")
    assert "media sections" in (offer_problem(head + (sep + rest) * 3, 16) or "")
