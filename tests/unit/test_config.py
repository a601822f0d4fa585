from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from avatar_agent.core.config import Config, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def test_default_yaml_equals_embedded_defaults() -> None:
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_partial_file_keeps_other_defaults() -> None:
    cfg = parse_config("server:\n  port: 9000\n")
    assert cfg.server.port == 9000
    assert cfg.server.host == Config().server.host
    assert cfg.tts == Config().tts


def test_empty_file_is_defaults() -> None:
    assert parse_config("") == Config()


def test_unknown_key_rejected_with_path_and_line() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config("server:\n  port: 8080\n  prot: 1\n")
    (issue,) = exc.value.issues
    assert issue.path == "server.prot"
    assert issue.line == 3
    assert issue.message == "unknown key"


def test_every_error_reported() -> None:
    text = "server:\n  port: 70000\navatar:\n  width: 641\ntts:\n  speed: 9\nbogus: 1\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    paths = {i.path: i for i in exc.value.issues}
    assert set(paths) == {"server.port", "avatar.width", "tts.speed", "bogus"}
    assert paths["server.port"].line == 2
    assert "70000" in paths["server.port"].message
    assert "even" in paths["avatar.width"].message


def test_nested_list_error_path() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config("server:\n  ice_servers:\n    - urls: []\n")
    assert exc.value.issues[0].path == "server.ice_servers.0.urls"
    assert exc.value.issues[0].line == 3


@pytest.mark.parametrize("text", ["a: [1, 2", "- 1\n- 2\n", "just text"])
def test_malformed_yaml(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(text)


def test_config_is_immutable() -> None:
    cfg = Config()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type
        cfg.server.port = 1  # type: ignore[misc]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_cli_ok() -> None:
    res = _check(REPO / "configs" / "default.yaml")
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout


def test_check_config_cli_reports_each_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"server": {"port": "eighty"}, "storage": {"uri": "x"}}))
    res = _check(bad)
    assert res.returncode == 1
    assert "server.port" in res.stderr
    assert "storage.uri: unknown key" in res.stderr
    assert "2 problem(s)" in res.stderr
    assert "Traceback" not in res.stderr


def test_barge_in_confirmation_must_outlast_the_speech_start() -> None:
    with pytest.raises(ConfigError, match=r"barge_in.confirm_s \(0.12\) must be at least"):
        parse_config("barge_in:\n  confirm_s: 0.12\n", "x.yaml")
    # without holding there is nothing to confirm in time
    assert parse_config("barge_in:\n  confirm_s: 0.12\n  hold: false\n").barge_in.hold is False


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("avatar:\n  behavior: {bad}\n", "unknown key"),
        ("affect:\n  script: {bad}\n", "step 1: anger_index"),
    ],
)
def test_serve_refuses_a_bad_persona_or_affect_script(
    tmp_path: Path, section: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {at: 0, anger_index: 500}\n" if "script" in section else "nonsense: 1\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(section.format(bad=bad))
    res = subprocess.run(
        [sys.executable, "-m", "avatar_agent.cli", "serve", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 2
    assert message in res.stderr and str(bad) in res.stderr
    assert "serving on" not in res.stdout and "Traceback" not in res.stderr
