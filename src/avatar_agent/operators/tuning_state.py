"""What the tuning routes share: the app's tuning state, who may call, the persona files.

A persona is named by its file's stem in the folder of `avatar.behavior`; the files
are read off the event loop and replaced atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from avatar_agent.avatar.behavior import Persona
from avatar_agent.avatar.persona_edit import EditError, issues_of
from avatar_agent.core.config import Config
from avatar_agent.core.httpjson import error
from avatar_agent.core.yamlconfig import ConfigError, ConfigIssue
from avatar_agent.operators.roles import TUNING_ROLES, require_role
from avatar_agent.speech.lipsync import MouthTimeline

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
tuner = require_role(*sorted(TUNING_ROLES))


@dataclass
class Tuning:
    """Per app: where the personas are, each operator's unsaved draft, the preview's
    sample line (synthesized once), and the lock that orders saves and undos."""

    config: Config
    directory: Path
    active: Path
    page: str
    drafts: dict[tuple[str, str], Persona] = field(default_factory=dict)
    streams: int = 0
    line: MouthTimeline | None = None
    wav: bytes | None = None  # the same line, with the silence the preview loops with
    line_tried: bool = False
    voice_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


TUNING: web.AppKey[Tuning] = web.AppKey("tuning", Tuning)


def persona_file(request: web.Request) -> Path | web.Response:
    name = request.match_info["name"]
    tuning = request.app[TUNING]
    path = tuning.directory / f"{name}.yaml"
    if not NAME_RE.fullmatch(name) or not path.is_file():
        return error(404, f"no persona {name!r}")
    return path


def refusal(exc: EditError | ConfigError) -> web.Response:
    if isinstance(exc, EditError):
        body: dict[str, Any] = {"error": str(exc), "field": exc.field}
    else:
        issues = issues_of(exc)
        body = {"error": "; ".join(f"{i['field']}: {i['message']}" for i in issues),
                "field": issues[0]["field"] if issues else "", "issues": issues}
    return web.json_response(body, status=400)


async def read_persona(path: Path) -> str:
    """The file's text, read off the event loop; a file that is not UTF-8 is a
    ConfigError, since neither the schema nor an edit could read it."""
    data = await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path.name, [ConfigIssue("", None, f"not UTF-8 text: {exc.reason}")]
                          ) from None


async def write_persona(path: Path, text: str) -> None:
    await asyncio.get_running_loop().run_in_executor(None, write_atomic, path,
                                                     text.encode("utf-8"))


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the file in one step: a reader (a live call's reload) sees old or new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- page and reading ------------------------------------------------------------------
