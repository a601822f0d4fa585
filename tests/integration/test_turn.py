"""TURN credentials against a real coturn (Debian's `coturn`, started here with the
shared-secret scheme): what the server hands out allocates a relay; coturn itself
refuses an expired one and a forged one. The page gets fresh credentials with each
load; the unit part checks the scheme's arithmetic."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from avatar_agent.core.config import TurnConfig
from avatar_agent.core.turn import turn_credentials, turn_ice_server
from tests.support.server import stop_server
from tests.support.services import free_port

SECRET = "coturn-shared-secret-for-tests-0123"


@pytest.fixture(scope="module")
def coturn() -> Iterator[int]:
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.fail("turnserver not found (Debian package coturn)")
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="aa-turn-"))
    log = root / "turn.log"
    low = 40000 + port % 20000  # a relay range of its own
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}",
             "--relay-ip=127.0.0.1", f"--min-port={low}", f"--max-port={low + 50}",
             "--use-auth-secret", f"--static-auth-secret={SECRET}", "--realm=avatar.test",
             "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout", "--simple-log",
             f"--pidfile={root / 'turn.pid'}"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        assert proc.poll() is None, log.read_text()
        yield port
    finally:
        stop_server(proc, 10)  # SIGTERM, then SIGKILL
        shutil.rmtree(root, ignore_errors=True)


async def allocate(port: int, username: str, password: str) -> tuple[str, int]:
    """A relay allocation over TCP; the relayed address coturn gave."""
    transport, _ = await asyncio.wait_for(create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", port), username, password,
        lifetime=60, transport="tcp"), 10)
    try:
        relayed = transport.get_extra_info("sockname")
        return str(relayed[0]), int(relayed[1])
    finally:
        transport.close()


def test_the_scheme() -> None:
    username, password = turn_credentials("s3cret", 600, now=1_700_000_000.4, name="c")
    assert username == "1700000600:c"
    want = base64.b64encode(hmac.new(b"s3cret", b"1700000600:c", hashlib.sha1).digest())
    assert password == want.decode()
    entry = turn_ice_server(TurnConfig(urls=["turn:t:3478"], secret="x" * 16, ttl_s=60), 100.0)
    assert entry["urls"] == ["turn:t:3478"] and entry["username"] == "160:customer"


async def test_coturn_allocates_for_fresh_credentials(coturn: int) -> None:
    username, password = turn_credentials(SECRET, 600, time.time())
    host, port = await allocate(coturn, username, password)
    assert host == "127.0.0.1" and port > 0


async def test_coturn_refuses_expired_and_forged_credentials(coturn: int) -> None:
    expired = turn_credentials(SECRET, -60, time.time())  # ran out a minute ago
    forged = turn_credentials("not-the-shared-secret-at-all", 600, time.time())
    tampered = (f"{int(time.time()) + 86400 * 365}:customer",
                turn_credentials(SECRET, 600, time.time())[1])  # a later expiry, same hmac
    for username, password in (expired, forged, tampered):
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(coturn, username, password)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401, username
