"""A real `avatar-agent serve` in a subprocess, for tests and benchmarks that call it
over the network (HTTP, WebRTC) the way a deployment is called."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.services import free_port


def spawn_server(
    workdir: Path, cwd: Path, timeout: float = 90.0, config_yaml: str = "",
    storage_url: str | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """`avatar-agent serve` in a subprocess on a free port, with its own SQLite file.

    Writes `config.yaml`, `calls.db` and `server.log` into workdir; returns the
    process and its base URL once `/healthz` answers. Raises RuntimeError with the
    end of the server's log if it does not come up. `config_yaml` holds further
    top-level sections of the config (not `storage`), e.g. "affect:\n  script: x.yaml\n".
    """
    port = free_port()
    cfg = workdir / "config.yaml"
    if "server:" not in config_yaml:
        # every test customer comes from 127.0.0.1: one client to admission, so the
        # per-client limits (tested on their own) are set wide for the other tests
        config_yaml += ("server:\n  joins_per_client_per_min: 600\n"
                        "  max_calls_per_client: 20\n  max_half_open_per_client: 8\n")
    if "call_cores" not in config_yaml:
        # the CPU budget depends on the machine's cores; tests of other things must not
        config_yaml = config_yaml.replace("server:\n", "server:\n  call_cores: null\n", 1)
    store_url = storage_url or f"sqlite:///{workdir / 'calls.db'}"  # or a shared PostgreSQL
    cfg.write_text(f"storage:\n  url: {store_url}\n" + config_yaml)
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "avatar_agent.cli", "serve", "--config", str(cfg),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
        )
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url, timeout, proc):
        proc.kill()
        raise RuntimeError("server did not start:\n" + log.read_text()[-4000:])
    return proc, url


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None,
                 context: ssl.SSLContext | None = None) -> bool:
    """Whether `url`/healthz answers 200 within `timeout` s (False at once if `proc`,
    the process serving it, has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2, context=context) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop a server from `spawn_server` as a supervisor would: SIGTERM, then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
