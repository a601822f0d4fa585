"""One typed configuration tree, loaded from YAML and validated strictly.

Every section rejects unknown keys, so a typo in a YAML file is an error with its path
instead of a setting that silently does nothing. The defaults here are the embedded
defaults; `configs/default.yaml` spells them out and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IceServer(Section):
    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = None


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Offers are a few KiB; anything larger is a mistake or an attack.
    max_body_bytes: int = Field(65536, ge=1024, le=1_048_576)
    max_calls: int = Field(20, ge=1, le=1000)
    # Given to the browser page and to the server's own peer; empty means host candidates only.
    ice_servers: list[IceServer] = Field(default_factory=list)


class CallConfig(Section):
    # The page sends a heartbeat on the data channel; silence this long means the
    # customer's network or browser is gone, and the call is ended.
    heartbeat_timeout_s: float = Field(10.0, gt=0, le=300)
    # Upper bound on a call with no live connection at all (ICE never completed).
    connect_timeout_s: float = Field(30.0, gt=0, le=300)


class AvatarConfig(Section):
    name: str = "default"
    width: int = Field(640, ge=160, le=1920)
    height: int = Field(480, ge=120, le=1080)
    fps: int = Field(30, ge=5, le=60)

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (yuv420p video)")
        return v


class TTSConfig(Section):
    engine: str = Field("piper", pattern="^piper$")
    speed: float = Field(1.0, ge=0.5, le=2.0)
    greeting: str = Field(
        "Hello, I am the virtual support assistant. How can I help you today?",
        min_length=1,
        max_length=1000,
    )


class PerceptionConfig(Section):
    # Face analysis rate per call; frames in between are dropped (latest frame wins).
    face_fps: float = Field(15.0, gt=0, le=60)
    # Seconds of features each call keeps for the affect stage.
    ring_seconds: float = Field(10.0, ge=2, le=120)
    # A customer's first seconds of visible face / voiced speech set their reference.
    baseline_face_s: float = Field(5.0, gt=0, le=60)
    baseline_voice_s: float = Field(3.0, gt=0, le=60)


class LevelConfig(Section):
    """Customer level from the smoothed anger index, with hysteresis and a minimum dwell."""

    # enter a level when the index reaches its `enter`, leave it when it falls below `exit`
    dissatisfied_enter: float = Field(40.0, ge=0, le=100)
    dissatisfied_exit: float = Field(30.0, ge=0, le=100)
    furious_enter: float = Field(70.0, ge=0, le=100)
    furious_exit: float = Field(58.0, ge=0, le=100)
    min_dwell_s: float = Field(3.0, ge=0, le=120)  # a level is held at least this long

    @model_validator(mode="after")
    def _ordered(self) -> LevelConfig:
        if not self.dissatisfied_exit < self.dissatisfied_enter:
            raise ValueError("dissatisfied_exit must be below dissatisfied_enter")
        if not self.furious_exit < self.furious_enter:
            raise ValueError("furious_exit must be below furious_enter")
        if not self.dissatisfied_enter < self.furious_enter:
            raise ValueError("dissatisfied_enter must be below furious_enter")
        return self


class AffectConfig(Section):
    model: str = "assets/models/affect.pt"  # relative paths are taken from the project root
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")  # auto = CUDA when present
    max_batch: int = Field(64, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=200)
    rate_hz: float = Field(4.0, ge=2, le=20)  # affect updates per call per second
    smoothing_s: float = Field(1.0, ge=0, le=30)  # time constant of the output smoothing
    level: LevelConfig = LevelConfig()
    # A YAML list of timed affect steps that replaces the model (demos, persona tuning,
    # tests); see affect/script.py. Relative paths are taken from the working directory.
    script: str | None = None


class StorageConfig(Section):
    # Any SQLAlchemy URL; a relative SQLite path is relative to the working directory.
    url: str = "sqlite:///var/avatar-agent.db"


class Config(Section):
    server: ServerConfig = ServerConfig()
    call: CallConfig = CallConfig()
    avatar: AvatarConfig = AvatarConfig()
    tts: TTSConfig = TTSConfig()
    perception: PerceptionConfig = PerceptionConfig()
    affect: AffectConfig = AffectConfig()
    storage: StorageConfig = StorageConfig()


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file: where (YAML path and line) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigError(Exception):
    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  {source}:{i}" for i in issues)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


def _line_index(node: yaml.Node | None, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each YAML path to its 1-based line, so errors can point into the file."""
    out: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            out[path] = key.start_mark.line + 1
            out.update(_line_index(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, str(i))
            out[path] = item.start_mark.line + 1
            out.update(_line_index(item, path))
    return out


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate YAML text; raise ConfigError listing every problem with its path."""
    try:
        data: Any = yaml.safe_load(text)
        lines = _line_index(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, [ConfigIssue("", line, f"not valid YAML: {exc}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", 1, "the top level must be a mapping")])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            line = None
            for n in range(len(loc), 0, -1):
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif "input" in err and not isinstance(err["input"], dict | list):
                msg = f"{msg} (got {err['input']!r})"
            issues.append(ConfigIssue(".".join(loc), line, msg))
        raise ConfigError(source, issues) from None


def load_config(path: Path | None) -> Config:
    """Load a YAML file, or the embedded defaults when path is None."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(path), [ConfigIssue("", None, f"cannot read: {exc.strerror}")]
        ) from None
    return parse_config(text, str(path))
