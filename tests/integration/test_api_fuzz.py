"""A bounded schemathesis pass over the server's own OpenAPI document: customer and
operator routes, valid and invalid bodies; no 5xx, and every error is JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.support.server import spawn_server, stop_server

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
CASES_PER_OPERATION = 20  # about 20 operations: a few hundred requests in all


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "script.yaml").write_text("- {at: 0, anger_index: 10}\n")
    try:
        proc, url = spawn_server(tmp, REPO,
                                 config_yaml=f"affect:\n  script: {tmp / 'script.yaml'}\n")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        res = subprocess.run(
            [sys.executable, "-m", "avatar_agent.cli", "operators", "add", "alice",
             "--config", str(tmp / "config.yaml")],
            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
        assert res.returncode == 0, res.stderr
        r = requests.post(url + "/api/login", json={"name": "alice", "password": PASSWORD},
                          timeout=10)
        assert r.status_code == 200, r.text
        yield url, r.json()["token"]
    finally:
        stop_server(proc)


def test_the_document_lists_customer_and_operator_routes(server: tuple[str, str]) -> None:
    url, _ = server
    with urllib.request.urlopen(url + "/api/openapi.json", timeout=5) as r:
        doc = json.load(r)
    assert {"/api/join", "/api/calls", "/api/login", "/api/calls/{call_id}/say"} <= set(
        doc["paths"])
    offer = doc["components"]["schemas"]["OfferBody"]
    assert set(offer["required"]) == {"sdp", "type"}


def test_fuzz_every_operation(server: tuple[str, str]) -> None:
    url, token = server
    schema = schemathesis.openapi.from_url(url + "/api/openapi.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 15
    seen: dict[int, int] = {}
    http = requests.Session()
    def check(case: Any, headers: dict[str, str]) -> None:
        resp = case.call(base_url=url, session=http, headers=headers, timeout=10)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        where = f"{case.method} {case.formatted_path}: {resp.status_code} {resp.text[:200]}"
        assert resp.status_code < 500, where
        if resp.status_code >= 400:
            ctype = resp.headers.get("content-type", [""])[0]
            assert ctype.startswith("application/json"), where
            try:
                body = json.loads(resp.text)
            except ValueError:
                body = None
            assert isinstance(body, dict) and isinstance(body.get("error"), str), where

    def fuzz(strategy: Any, headers: dict[str, str]) -> Any:
        @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=strategy)
        def run(case: Any) -> None:
            check(case, headers)
        return run

    for operation in operations:
        # logging out would end the token the other operations use
        logout = operation.method.upper() == "POST" and operation.path.endswith("/logout")
        headers = {} if logout else {"Authorization": f"Bearer {token}"}
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))
        fuzz(strategy, headers)()
    print("fuzz statuses", dict(sorted(seen.items())))
    assert sum(seen.values()) >= 200, seen
    assert any(200 <= s < 300 for s in seen), seen  # not only refusals
