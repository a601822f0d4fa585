"""The tuning page's preview: the avatar streamed as the server renders it, the contact
sheet, and the sample line its mouth follows.

Each viewer gets its own animator and renderer, run in the server's render pool one
frame at a time; the persona is the viewer's draft if there is one, else the saved
file (re-read when it changes). Streams are few (MAX_STREAMS) and end on their own
after MAX_STREAM_S, since rendering takes CPU that live calls need.
"""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from aiohttp import web

from avatar_agent.avatar.behavior import STATES, Persona, PersonaWatcher, parse_persona
from avatar_agent.avatar.live_preview import LINE_GAP_S, VIEWS, PreviewStream, jpeg
from avatar_agent.avatar.preview import contact_sheet
from avatar_agent.avatar.render import AvatarRenderer, default_avatar_dir
from avatar_agent.core.clock import LoopClock, Ticker
from avatar_agent.core.config import ConfigError
from avatar_agent.core.httpjson import error
from avatar_agent.core.levels import LEVELS
from avatar_agent.operators.http import runtime_of
from avatar_agent.operators.mjpeg import open_stream, part
from avatar_agent.operators.tuning_state import (
    TUNING,
    persona_file,
    read_persona,
    refusal,
    tuner,
)
from avatar_agent.speech.lipsync import MouthTimeline
from avatar_agent.speech.types import Utterance

log = logging.getLogger(__name__)
SAMPLE_LINE = "I'm so sorry about that, let me put it right for you."
PREVIEW_FPS = 12.0
MAX_STREAMS = 3  # rendering is CPU the calls need: a few viewers at most
MAX_STREAM_S = 600.0  # a forgotten tab stops costing CPU after this


class Voice(Protocol):
    """The server's voice, where it has one (`runtime.Runtime` does)."""

    def synthesize(self, text: str, speed: float | None = None) -> list[Utterance]: ...


async def _sample_line(request: web.Request) -> MouthTimeline | None:
    """The sample apology's real mouth timeline, synthesized once by the server's voice."""
    tuning = request.app[TUNING]
    async with tuning.voice_lock:  # a stream and the WAV may ask at once: synthesize once
        if tuning.line_tried:
            return tuning.line
        tuning.line_tried = True
        services = runtime_of(request)
        voice: Voice | None = getattr(services, "tts", None)
        pool: Executor | None = getattr(services, "tts_pool", None)
        if voice is None:
            log.warning("no voice: the preview's mouth stays closed")
            return None
        utts = await asyncio.get_running_loop().run_in_executor(pool, voice.synthesize,
                                                                SAMPLE_LINE)
        if utts:
            tuning.line = MouthTimeline(utts[0].phonemes, utts[0].duration)
            tuning.wav = loop_wav(utts[0])
        return tuning.line


def loop_wav(utt: Utterance) -> bytes:
    """The line as a mono 16-bit WAV exactly one preview loop long (line, then silence),
    so a page that loops it keeps the stream's mouth period."""
    gap = np.zeros(round(LINE_GAP_S * utt.sample_rate), np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(utt.sample_rate)
        w.writeframes(np.concatenate([utt.pcm.astype("<i2"), gap]).tobytes())
    return out.getvalue()


@tuner
async def sample_wav(request: web.Request) -> web.Response:
    """The sample line the speaking and apologising previews mouth, for the page to play
    from the first frame of a stream (the stream's mouth loop starts with that frame)."""
    await _sample_line(request)
    wav = request.app[TUNING].wav
    if wav is None:
        return error(404, "this server has no voice")
    return web.Response(body=wav, content_type="audio/wav",
                        headers={"Cache-Control": "private, max-age=3600"})



@tuner
async def preview(request: web.Request) -> web.StreamResponse:
    """`?view=single|cycle|side&level=..&state=..`: the avatar as MJPEG, re-reading the
    operator's draft (or the saved file) every frame."""
    path = persona_file(request)
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
    resp = await open_stream(request)
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
            await resp.write(part(data))
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
    path = persona_file(request)
    if isinstance(path, web.Response):
        return path
    tuning = request.app[TUNING]
    persona = tuning.drafts.get((request["operator"], path.stem))
    if persona is None:
        try:
            persona = parse_persona(await read_persona(path), path.name)
        except ConfigError as exc:
            return refusal(exc)
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
