"""The transport floor: a server that only carries media, for capacity benchmarks.

It speaks the customer API (`/api/join`, `/api/calls`) like `avatar-agent serve`, and
answers each offer with aiortc as shipped (its own VP8 and Opus encoders), sending a
640x480 avatar at 30 fps from pictures drawn once at start-up and silence, and
decoding and dropping the customer's media. No analysis, no affect, no rendering, no
speech: what a call costs before the product does anything.

    python -m avatar_agent.testing.floor --port 8090
"""

from __future__ import annotations

import argparse
import asyncio
import math
import uuid

import cv2
import numpy as np
import numpy.typing as npt
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from avatar_agent.avatar.animator import IdleAnimator
from avatar_agent.avatar.render import AvatarRenderer
from avatar_agent.testing.loop_media import AUDIO_FRAME, LoopAudioTrack, LoopVideoTrack
from avatar_agent.transport.webrtc import close_peer, rtc_configuration

FPS = 30
PICTURES = 90  # three seconds of a moving avatar, looped


def avatar_pictures(n: int = PICTURES) -> list[npt.NDArray[np.uint8]]:
    renderer, animator = AvatarRenderer(), IdleAnimator(seed=1)
    poses = [animator.pose(i / FPS, 0.5 + 0.5 * math.sin(i / 3)) for i in range(n)]
    return [np.asarray(cv2.cvtColor(renderer.render(p), cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
            for p in poses]


async def _drain(track: MediaStreamTrack) -> None:
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        return


PICS: web.AppKey[list[npt.NDArray[np.uint8]]] = web.AppKey("pictures", list)
PEERS: web.AppKey[dict[str, RTCPeerConnection]] = web.AppKey("peers", dict)
TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("tasks", set)


async def join(_request: web.Request) -> web.Response:
    return web.json_response({"join_token": uuid.uuid4().hex, "expires_in_s": 60}, status=201)


async def create_call(request: web.Request) -> web.Response:
    body = await request.json()
    pc = RTCPeerConnection(rtc_configuration([]))
    tasks = request.app[TASKS]

    def on_track(track: MediaStreamTrack) -> None:
        task = asyncio.ensure_future(_drain(track))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    pc.on("track", on_track)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
    pc.addTrack(LoopVideoTrack(request.app[PICS], FPS))
    pc.addTrack(LoopAudioTrack(np.zeros(AUDIO_FRAME, np.int16)))  # silence
    await pc.setLocalDescription(await pc.createAnswer())
    call_id = uuid.uuid4().hex
    request.app[PEERS][call_id] = pc
    return web.json_response({"call_id": call_id, "sdp": pc.localDescription.sdp,
                              "type": pc.localDescription.type}, status=201)


async def end_call(request: web.Request) -> web.Response:
    pc = request.app[PEERS].pop(request.match_info["call_id"], None)
    if pc is None:
        return web.json_response({"error": "no such call"}, status=404)
    await close_peer(pc)
    return web.json_response({"ended": True})


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def make_app() -> web.Application:
    app = web.Application()
    app[PICS] = avatar_pictures()
    app[PEERS] = {}
    app[TASKS] = set()
    app.router.add_post("/api/join", join)
    app.router.add_post("/api/calls", create_call)
    app.router.add_delete("/api/calls/{call_id}", end_call)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description="media-only server: the transport floor")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
