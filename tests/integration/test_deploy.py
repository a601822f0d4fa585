"""The deployment files check out with the tools that will run them: the systemd units
with `systemd-analyze verify` (installed at this checkout, whose .venv stands for
/opt/avatar-agent's), the nginx front with `nginx -t` (with a throwaway certificate in
place of the real one), and coturn's file by running coturn on it (it has no check-only
mode): on a free loopback port, with a throwaway secret and certificate, it must
allocate relays for the workers' credentials over TCP and TLS, refuse a forged one,
and refuse to relay into a private network while relaying to a public address."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import TurnClientTcpProtocol

from avatar_agent.core.turn import turn_credentials
from tests.support.server import stop_server
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def test_systemd_units_verify(tmp_path: Path) -> None:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze not found (Debian package systemd)")
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/avatar-agent", str(REPO))
        (tmp_path / unit.name).write_text(text)
    res = subprocess.run([exe, "verify", str(tmp_path / "avatar-agent@8081.service"),
                          str(tmp_path / "avatar-agent.target")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # unknown keys and bad values are only warnings to systemd: none allowed here
    assert res.stderr.strip() == "", res.stderr


def test_nginx_front_config(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    openssl = shutil.which("openssl")
    if not Path(nginx).exists() or openssl is None:
        pytest.fail("nginx or openssl not found (Debian packages nginx, openssl)")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=support.example.com", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    site = (DEPLOY / "nginx" / "avatar-agent.conf").read_text()
    site = (site.replace("/etc/ssl/avatar-agent/fullchain.pem", str(tmp_path / "cert.pem"))
            .replace("/etc/ssl/avatar-agent/privkey.pem", str(tmp_path / "key.pem")))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/site.conf;\n}}\n")
    res = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "test is successful" in res.stderr


def self_signed(dest: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found (Debian package openssl)")
    cert, key = dest / "cert.pem", dest / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def setting(text: str, key: str, value: str | None) -> str:
    """`text` with its one `key=...` (or bare `key`) line set to `key=value` (or
    removed, for None); the file must have exactly one such line."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if line == key or line.startswith(key + "=")]
    assert len(hits) == 1, f"{key}: {len(hits)} lines in deploy/coturn/turnserver.conf"
    if value is None:
        del lines[hits[0]]
    else:
        lines[hits[0]] = f"{key}={value}"
    return "\n".join(lines) + "\n"


TURN_SECRET = "deploy-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """coturn on deploy/coturn/turnserver.conf; yields its TCP and TLS ports."""
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.fail("turnserver not found (Debian package coturn)")
    tmp = tmp_path_factory.mktemp("coturn")
    cert, key = self_signed(tmp, "turn.example.com")
    port, tls_port = free_port(), free_port()
    low = 40000 + port % 20000  # a relay range of its own
    conf = (DEPLOY / "coturn" / "turnserver.conf").read_text()
    for k, v in (("static-auth-secret", TURN_SECRET), ("listening-port", str(port)),
                 ("tls-listening-port", str(tls_port)), ("min-port", str(low)),
                 ("max-port", str(low + 50)), ("cert", str(cert)), ("pkey", str(key)),
                 ("syslog", None)):
        conf = setting(conf, k, v)
    # loopback only here, where a real deployment listens on its public address
    conf += (f"listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlog-file=stdout\n"
             f"pidfile={tmp / 'turn.pid'}\nuserdb={tmp / 'turndb'}\n")
    (tmp / "turnserver.conf").write_text(conf)
    log = tmp / "turn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(tmp / "turnserver.conf")],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not listening(port) or not listening(tls_port):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        yield port, tls_port
    finally:
        stop_server(proc, 10)  # SIGTERM, then SIGKILL


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


async def turn_client(port: int, username: str, password: str,
                      tls: bool = False) -> TurnClientTcpProtocol:
    """A TURN client with an allocation (over TLS, trusting any certificate)."""
    ctx = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(loop.create_connection(
        lambda: TurnClientTcpProtocol(("127.0.0.1", port), username=username,
                                      password=password, lifetime=60, channel_refresh_time=50),
        "127.0.0.1", port, ssl=ctx), 10)
    try:
        await asyncio.wait_for(client.connect(), 10)
    except BaseException:
        client.transport.close()
        raise
    return client


async def test_coturn_config_relays_for_the_workers_credentials_only(
        coturn: tuple[int, int]) -> None:
    port, tls_port = coturn
    username, password = turn_credentials(TURN_SECRET, 600, time.time())
    for tls in (False, True):
        client = await turn_client(tls_port if tls else port, username, password, tls=tls)
        assert client.relayed_address is not None and client.relayed_address[1] > 0
        # a public peer may be reached; private networks and loopback may not
        await client.channel_bind(0x4000, ("93.184.216.34", 9))
        for n, peer in enumerate(("10.1.2.3", "192.168.1.1", "172.16.0.1", "127.0.0.1",
                                  "169.254.169.254")):
            with pytest.raises(stun.TransactionFailed) as refused:
                await client.channel_bind(0x4001 + n, (peer, 9))
            assert refused.value.response.attributes["ERROR-CODE"][0] == 403, peer
        await client.delete()
    forged = turn_credentials("CHANGE-ME-to-the-workers-server.turn.secret", 600, time.time())
    with pytest.raises(stun.TransactionFailed) as refused:
        await turn_client(port, *forged)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
