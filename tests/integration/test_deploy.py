"""The deployment files check out with the tools that will run them: the systemd units
with `systemd-analyze verify` (installed at this checkout, whose .venv stands for
/opt/avatar-agent's), the nginx front with `nginx -t` (with a throwaway certificate in
place of the real one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
