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

import logging
import time

from aiohttp import web

from avatar_agent.avatar.behavior import STATES, Persona, parse_persona
from avatar_agent.avatar.live_preview import VIEWS
from avatar_agent.avatar.persona_edit import (
    Change,
    EditError,
    apply_changes,
    controls,
    parse_changes,
)
from avatar_agent.core.config import Config, ConfigError, project_path
from avatar_agent.core.httpjson import error, json_body, read_page
from avatar_agent.core.levels import LEVELS
from avatar_agent.operators.auth import AuthError
from avatar_agent.operators.http import authenticate, runtime_of
from avatar_agent.operators.roles import TUNING_ROLES, role_of
from avatar_agent.operators.tuning_preview import preview, sample_wav, sheet
from avatar_agent.operators.tuning_state import (
    NAME_RE,
    TUNING,
    Tuning,
    persona_file,
    read_persona,
    refusal,
    tuner,
    write_persona,
)

log = logging.getLogger(__name__)


async def _changes(request: web.Request) -> list[Change] | web.Response:
    data = await json_body(request, 65536)
    if isinstance(data, web.Response):
        return data
    try:
        return parse_changes(data.get("changes"))
    except EditError as exc:
        return refusal(exc)


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
            persona: Persona | None = parse_persona(await read_persona(path), path.name)
        except (ConfigError, OSError):
            persona = None
        out.append({"name": path.stem, "persona": persona.name if persona else None,
                    "description": persona.description if persona else "",
                    "valid": persona is not None, "active": path == tuning.active})
    return web.json_response({"personas": out, "operator": request["operator"],
                              "role": request["role"]})


@tuner
async def get_persona(request: web.Request) -> web.Response:
    path = persona_file(request)
    if isinstance(path, web.Response):
        return path
    try:
        persona = parse_persona(await read_persona(path), path.name)
    except ConfigError as exc:
        return refusal(exc)
    tuning = request.app[TUNING]
    tuning.drafts.pop((request["operator"], path.stem), None)  # a fresh page starts clean
    return web.json_response({
        "name": path.stem, "persona": persona.name, "description": persona.description,
        "active": path == tuning.active, "groups": controls(persona),
        "levels": list(LEVELS), "states": list(STATES), "views": list(VIEWS)})


# --- drafts: what this operator's preview shows ------------------------------------------

@tuner
async def draft(request: web.Request) -> web.Response:
    """Unsaved values the preview shows to this operator (the file is untouched)."""
    path = persona_file(request)
    if isinstance(path, web.Response):
        return path
    changes = await _changes(request)
    if isinstance(changes, web.Response):
        return changes
    try:
        text = await read_persona(path)
        persona = parse_persona(apply_changes(text, changes, path.name), path.name)
    except (EditError, ConfigError) as exc:
        return refusal(exc)
    request.app[TUNING].drafts[(request["operator"], path.stem)] = persona
    return web.json_response({"draft": True, "changes": len(changes)})


# --- save, history, undo ---------------------------------------------------------------

@tuner
async def save(request: web.Request) -> web.Response:
    path = persona_file(request)
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
        try:
            before = await read_persona(path)
            after = apply_changes(before, changes, path.name)
        except (EditError, ConfigError) as exc:
            return refusal(exc)
        await write_persona(path, after)
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
    path = persona_file(request)
    if isinstance(path, web.Response):
        return path
    store = runtime_of(request).store
    rows = await store.run(store.store.persona_history, path.stem)
    return web.json_response({"persona": path.stem, "versions": rows})


@tuner
async def undo(request: web.Request) -> web.Response:
    """Put back the file as it was before the latest save still in effect, byte for byte."""
    path = persona_file(request)
    if isinstance(path, web.Response):
        return path
    tuning = request.app[TUNING]
    store = runtime_of(request).store
    async with tuning.lock:
        try:
            current = await read_persona(path)
        except ConfigError as exc:
            return refusal(exc)
        undone = await store.run(store.store.undo_persona_save, path.stem, current)
        if undone is None:
            return error(409, "nothing to undo: no save from this page is in effect "
                              "(or the file was changed elsewhere since)")
        await write_persona(path, undone["before"])
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
    app.router.add_get("/api/tuning/sample.wav", sample_wav)
    app.router.add_get("/api/tuning/personas", list_personas)
    app.router.add_get("/api/tuning/personas/{name}", get_persona)
    app.router.add_post("/api/tuning/personas/{name}/draft", draft)
    app.router.add_get("/api/tuning/personas/{name}/preview.mjpeg", preview)
    app.router.add_get("/api/tuning/personas/{name}/sheet.png", sheet)
    app.router.add_post("/api/tuning/personas/{name}/save", save)
    app.router.add_get("/api/tuning/personas/{name}/history", history)
    app.router.add_post("/api/tuning/personas/{name}/undo", undo)
