"""The customer's camera, live, for an operator: `GET /api/calls/{id}/video.mjpeg`.

Only where config allows it (`operators.show_customer_video`) and only for a customer
who agreed on the page, which then says an operator may see them. Frames go from
memory to the operator's browser as a multipart JPEG stream that an `<img>` shows;
nothing is written anywhere. The newest frame wins and the rate is capped, so a slow
viewer costs the call nothing. In a cluster, a worker asked for a call another worker
holds passes the stream through from that worker (`remote.relay_stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import av
import cv2
import numpy as np
from aiohttp import web
from av.video.reformatter import VideoReformatter

from avatar_agent.core.clock import LoopClock, Ticker
from avatar_agent.core.httpjson import error
from avatar_agent.operators.http import live_call, operator_only, ops_of, runtime_of
from avatar_agent.operators.mjpeg import open_stream, part
from avatar_agent.operators.remote import relay_stream

log = logging.getLogger(__name__)
JPEG_QUALITY = 80
WAIT_S = 1.0  # how often a stream with no new frame checks that its call still runs


def encode_jpeg(frame: av.VideoFrame, reformatter: VideoReformatter) -> bytes:
    """JPEG of a received frame, converted with the viewer's own `reformatter`.

    `frame.to_ndarray()` would use the scaler cached on the frame, which face analysis
    uses at the same moment in another thread; two threads in one scaler deadlock.
    """
    bgr = reformatter.reformat(frame, format="bgr24").to_ndarray()
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.asarray(buf).tobytes()



@operator_only
async def customer_video(request: web.Request) -> web.StreamResponse:
    cfg = ops_of(request).config.operators
    if not cfg.show_customer_video:
        return error(404, "the customer's camera is not shown to operators "
                          "(operators.show_customer_video is off)")
    session = live_call(request)
    if isinstance(session, web.Response):  # perhaps held by another worker
        return await relay_stream(request, session)
    if not session.consent_analysis:
        return error(403, "the customer did not agree to be seen")
    video = session.transport.video_in if session.transport is not None else None
    if video is None:
        return error(404, "the customer sends no video")

    resp = await open_stream(request)
    pool = runtime_of(request).analysis_pool
    loop = asyncio.get_running_loop()
    slot = video.subscribe(sampled=True)
    reformatter = VideoReformatter()  # used by one encode at a time: each is awaited
    sent = 0
    ticker = Ticker(LoopClock(), 1.0 / cfg.customer_video_fps)
    try:
        while session.end_reason is None and not video.ended:
            frame = slot.take()
            if frame is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(video.arrival(), WAIT_S)
                continue
            jpeg = await loop.run_in_executor(pool, encode_jpeg, frame, reformatter)
            await resp.write(part(jpeg))
            sent += 1
            await ticker.tick()
    except ConnectionError:
        pass  # the operator closed the view
    finally:
        video.unsubscribe(slot)
        log.info("operator %s watched call %s: %d frames", request["operator"],
                 session.call_id, sent)
    return resp
