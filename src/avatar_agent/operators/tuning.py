"""The tuning page: a support team shapes a persona and sees it before customers do.

`GET /tuning` and everything under `/api/tuning/` need the `tuner` or `admin` role.
The page lists the persona files beside the configured one (`avatar.behavior`), shows
each value of one as a slider (ranges and units from the persona schema), streams the
avatar as the server renders it while sliders move (a draft held in memory per
operator), saves through the schema `check-config` uses with an atomic,
comment-preserving write, and keeps every version in the store (history, undo).
Live calls pick a save up through the persona hot reload they already run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from aiohttp import web

from avatar_agent.avatar.behavior import STATES, Persona, PersonaWatcher, parse_persona
from avatar_agent.avatar.live_preview import VIEWS, PreviewStream, jpeg
from avatar_agent.avatar.persona_edit import (
    Change,
    EditError,
    apply_changes,
    controls,
    issues_of,
    parse_changes,
)
from avatar_agent.avatar.preview import contact_sheet
from avatar_agent.avatar.render import AvatarRenderer, default_avatar_dir
from avatar_agent.core.clock import LoopClock, Ticker
from avatar_agent.core.config import Config, ConfigError, project_path
from avatar_agent.core.httpjson import error, json_body, read_page
from avatar_agent.core.levels import LEVELS
from avatar_agent.operators.auth import AuthError
from avatar_agent.operators.http import authenticate, runtime_of
from avatar_agent.operators.roles import TUNING_ROLES, require_role, role_of
from avatar_agent.speech.lipsync import MouthTimeline
from avatar_agent.speech.types import Utterance

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SAMPLE_LINE = "I'm so sorry about that, let me put it right for you."
PREVIEW_FPS = 12.0
MAX_STREAMS = 3  # rendering is CPU the calls need: a few viewers at most
MAX_STREAM_S = 600.0  # a forgotten tab stops costing CPU after this
BOUNDARY = "frame"
tuner = require_role(*sorted(TUNING_ROLES))


class Voice(Protocol):
    """The server's voice, where it has one (`runtime.Runtime` does)."""

    def synthesize(self, text: str, speed: float | None = None) -> list[Utterance]: ...


@dataclass
class Tuning:
    config: Config
    directory: Path
    active: Path
    page: str
    drafts: dict[tuple[str, str], Persona] = field(default_factory=dict)
    streams: int = 0
    line: MouthTimeline | None = None
    line_tried: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


TUNING: web.AppKey[Tuning] = web.AppKey("tuning", Tuning)


def _persona_file(request: web.Request) -> Path | web.Response:
    name = request.match_info["name"]
    tuning = request.app[TUNING]
    path = tuning.directory / f"{name}.yaml"
    if not NAME_RE.fullmatch(name) or not path.is_file():
        return error(404, f"no persona {name!r}")
    return path


def _refusal(exc: EditError | ConfigError) -> web.Response:
    if isinstance(exc, EditError):
        body: dict[str, Any] = {"error": str(exc), "field": exc.field}
    else:
        issues = issues_of(exc)
        body = {"error": "; ".join(f"{i['field']}: {i['message']}" for i in issues),
                "field": issues[0]["field"] if issues else "", "issues": issues}
    return web.json_response(body, status=400)


async def _changes(request: web.Request) -> list[Change] | web.Response:
    data = await json_body(request, 65536)
    if isinstance(data, web.Response):
        return data
    try:
        return parse_changes(data.get("changes"))
    except EditError as exc:
        return _refusal(exc)


async def _off_loop(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _read(path: Path) -> bytes:
    return path.read_bytes()


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

async def page(request: web.Request) -> web.StreamResponse:
    """The page itself; a signed-in operator without the role gets 403, anyone signed
    out gets the sign-in form it opens with."""
    try:
        claims = authenticate(request)
    except AuthError:
        claims = None
    if claims is not None and await role_of(request, claims.name) not in TUNING_ROLES:
        return error(403, "the tuning page needs the role tuner or admin")
    return web.Response(text=request.app[TUNING].page, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


@tuner
async def list_personas(request: web.Request) -> web.Response:
    tuning = request.app[TUNING]
    out = []
    for path in sorted(tuning.directory.glob("*.yaml")):
        if not NAME_RE.fullmatch(path.stem):
            continue
        try:
            persona: Persona | None = parse_persona(await _off_loop(_read, path), str(path))
        except (ConfigError, OSError):
            persona = None
        out.append({"name": path.stem, "persona": persona.name if persona else None,
                    "description": persona.description if persona else "",
                    "valid": persona is not None, "active": path == tuning.active})
    return web.json_response({"personas": out, "operator": request["operator"],
                              "role": request["role"]})


@tuner
async def get_persona(request: web.Request) -> web.Response:
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    text = (await _off_loop(_read, path)).decode("utf-8")
    try:
        persona = parse_persona(text, str(path))
    except ConfigError as exc:
        return _refusal(exc)
    tuning = request.app[TUNING]
    tuning.drafts.pop((request["operator"], path.stem), None)  # a fresh page starts clean
    return web.json_response({
        "name": path.stem, "persona": persona.name, "description": persona.description,
        "active": path == tuning.active, "groups": controls(persona),
        "levels": list(LEVELS), "states": list(STATES), "views": list(VIEWS)})


# --- preview ---------------------------------------------------------------------------

@tuner
async def draft(request: web.Request) -> web.Response:
    """Unsaved values the preview shows to this operator (the file is untouched)."""
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    changes = await _changes(request)
    if isinstance(changes, web.Response):
        return changes
    text = (await _off_loop(_read, path)).decode("utf-8")
    try:
        persona = parse_persona(apply_changes(text, changes, path.name), path.name)
    except (EditError, ConfigError) as exc:
        return _refusal(exc)
    request.app[TUNING].drafts[(request["operator"], path.stem)] = persona
    return web.json_response({"draft": True, "changes": len(changes)})


async def _sample_line(request: web.Request) -> MouthTimeline | None:
    """The sample apology's real mouth timeline, synthesized once by the server's voice."""
    tuning = request.app[TUNING]
    if tuning.line_tried:
        return tuning.line
    tuning.line_tried = True
    services = runtime_of(request)
    voice: Voice | None = getattr(services, "tts", None)
    pool: Executor | None = getattr(services, "tts_pool", None)
    if voice is None:
        log.warning("no voice: the preview's mouth stays closed")
        return None
    utts = await asyncio.get_running_loop().run_in_executor(pool, voice.synthesize, SAMPLE_LINE)
    if utts:
        tuning.line = MouthTimeline(utts[0].phonemes, utts[0].duration)
    return tuning.line


def _part(data: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    return head + data + b"\r\n"


@tuner
async def preview(request: web.Request) -> web.StreamResponse:
    """`?view=single|cycle|side&level=..&state=..`: the avatar as MJPEG, re-reading the
    operator's draft (or the saved file) every frame."""
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    tuning = request.app[TUNING]
    q = request.query
    view, level, state = q.get("view", "single"), q.get("level", "calm"), q.get("state", "idle")
    if view not in VIEWS or level not in LEVELS or state not in STATES:
        return error(400, f"view is one of {VIEWS}, level of {LEVELS}, state of {STATES}")
    if tuning.streams >= MAX_STREAMS:
        return error(503, f"{MAX_STREAMS} previews are already running; close one")
    tuning.streams += 1
    try:
        return await _stream(request, path, view, level, state)
    finally:
        tuning.streams -= 1


async def _stream(request: web.Request, path: Path, view: str, level: str,
                  state: str) -> web.StreamResponse:
    tuning = request.app[TUNING]
    pool = runtime_of(request).render_pool
    loop = asyncio.get_running_loop()
    line = await _sample_line(request)
    avatar_dir = default_avatar_dir().parent / tuning.config.avatar.name
    renderer = await loop.run_in_executor(pool, AvatarRenderer, avatar_dir)
    stream = PreviewStream(renderer, line, view, level, state)
    watcher = await loop.run_in_executor(pool, PersonaWatcher, path)
    key = (request["operator"], path.stem)
    resp = web.StreamResponse(headers={
        "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        "Cache-Control": "no-store"})
    await resp.prepare(request)
    clock = LoopClock()
    ticker = Ticker(clock, 1.0 / PREVIEW_FPS)
    start = clock.now()
    polled = start
    sent = 0

    def one_frame(t: float, persona: Persona, poll: bool) -> bytes:
        if poll:
            watcher.poll()
        return jpeg(stream.frame(persona, t))

    try:
        while (t := clock.now() - start) < MAX_STREAM_S:
            poll = clock.now() - polled >= 1.0
            if poll:
                polled = clock.now()
            persona = tuning.drafts.get(key) or watcher.persona
            data = await loop.run_in_executor(pool, one_frame, t, persona, poll)
            await resp.write(_part(data))
            sent += 1
            await ticker.tick()
    except ConnectionError:
        pass  # the page closed the view
    finally:
        log.info("tuning preview of %s for %s: %d frames", path.stem, request["operator"],
                 sent)
    return resp


@tuner
async def sheet(request: web.Request) -> web.Response:
    """The contact sheet `avatar-agent preview` writes, of the draft or the saved file."""
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    tuning = request.app[TUNING]
    persona = tuning.drafts.get((request["operator"], path.stem))
    if persona is None:
        try:
            persona = parse_persona((await _off_loop(_read, path)).decode("utf-8"), path.name)
        except ConfigError as exc:
            return _refusal(exc)
    avatar_dir = default_avatar_dir().parent / tuning.config.avatar.name

    def render() -> bytes:
        img = contact_sheet(persona, AvatarRenderer(avatar_dir))
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError("PNG encoding failed")
        return np.asarray(buf).tobytes()

    body = await asyncio.get_running_loop().run_in_executor(runtime_of(request).render_pool,
                                                            render)
    return web.Response(body=body, content_type="image/png",
                        headers={"Cache-Control": "no-store"})


# --- save, history, undo ---------------------------------------------------------------

@tuner
async def save(request: web.Request) -> web.Response:
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    changes = await _changes(request)
    if isinstance(changes, web.Response):
        return changes
    if not changes:
        return error(400, "nothing to save")
    tuning = request.app[TUNING]
    store = runtime_of(request).store
    async with tuning.lock:
        before = (await _off_loop(_read, path)).decode("utf-8")
        try:
            after = apply_changes(before, changes, path.name)
        except (EditError, ConfigError) as exc:
            return _refusal(exc)
        await _off_loop(write_atomic, path, after.encode("utf-8"))
        version = await store.run(store.store.add_persona_version, path.stem,
                                  request["operator"], "save",
                                  [{"path": c.path, "value": c.value} for c in changes],
                                  before, after)
    tuning.drafts.pop((request["operator"], path.stem), None)
    log.info("persona %s saved by %s: %s", path.stem, request["operator"],
             ", ".join(f"{c.path}={c.value}" for c in changes))
    return web.json_response({"saved": True, "version": version, "saved_at": time.time()})


@tuner
async def history(request: web.Request) -> web.Response:
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    store = runtime_of(request).store
    rows = await store.run(store.store.persona_history, path.stem)
    return web.json_response({"persona": path.stem, "versions": rows})


@tuner
async def undo(request: web.Request) -> web.Response:
    """Put back the file as it was before the latest save still in effect, byte for byte."""
    path = _persona_file(request)
    if isinstance(path, web.Response):
        return path
    tuning = request.app[TUNING]
    store = runtime_of(request).store
    async with tuning.lock:
        current = (await _off_loop(_read, path)).decode("utf-8")
        undone = await store.run(store.store.undo_persona_save, path.stem, current)
        if undone is None:
            return error(409, "nothing to undo: no save from this page is in effect "
                              "(or the file was changed elsewhere since)")
        await _off_loop(write_atomic, path, undone["before"].encode("utf-8"))
        version = await store.run(store.store.add_persona_version, path.stem,
                                  request["operator"], "undo",
                                  [{"undoes": undone["id"]}], current, undone["before"])
    tuning.drafts.pop((request["operator"], path.stem), None)
    log.info("persona %s: %s undid save %d", path.stem, request["operator"], undone["id"])
    return web.json_response({"undone": undone["id"], "version": version})


def register(app: web.Application, config: Config) -> None:
    active = project_path(config.avatar.behavior)
    app[TUNING] = Tuning(config, active.parent, active, read_page("tuning.html"))
    app.router.add_get("/tuning", page)
    app.router.add_get("/api/tuning/personas", list_personas)
    app.router.add_get("/api/tuning/personas/{name}", get_persona)
    app.router.add_post("/api/tuning/personas/{name}/draft", draft)
    app.router.add_get("/api/tuning/personas/{name}/preview.mjpeg", preview)
    app.router.add_get("/api/tuning/personas/{name}/sheet.png", sheet)
    app.router.add_post("/api/tuning/personas/{name}/save", save)
    app.router.add_get("/api/tuning/personas/{name}/history", history)
    app.router.add_post("/api/tuning/personas/{name}/undo", undo)
