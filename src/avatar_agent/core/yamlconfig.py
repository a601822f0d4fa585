"""YAML files checked against a typed model, with every problem pointing at its line.

For the server's configuration and for the other files an operator edits (personas,
affect scripts, knowledge): `ConfigError` lists each problem as "line N: path: what".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


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


def load_yaml(text: str, source: str = "<string>") -> tuple[Any, dict[tuple[str, ...], int]]:
    """YAML text as data, with the line of every path in it; ConfigError (with the line)
    when it is not YAML at all."""
    try:
        return yaml.safe_load(text), _line_index(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, [ConfigIssue("", line, f"not valid YAML: {exc}")]) from None


def parse_yaml_model(model: type[M], text: str, source: str = "<string>") -> M:
    """Validate YAML text against any model; ConfigError lists every problem with its line."""
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", 1, "the top level must be a mapping")])
    try:
        return model.model_validate(data)
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


def read_text(path: Path) -> str:
    """A config-like file's text; a file that cannot be read is a ConfigError."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(path), [ConfigIssue("", None, f"cannot read: {exc.strerror}")]
        ) from None
