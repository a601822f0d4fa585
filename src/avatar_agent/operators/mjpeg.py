"""A motion-JPEG stream over HTTP (`multipart/x-mixed-replace`): what an `<img>` in
the operator's and the tuner's pages shows as live video, one JPEG part at a time."""

from __future__ import annotations

from aiohttp import web

BOUNDARY = "frame"


async def open_stream(request: web.Request) -> web.StreamResponse:
    """The response, prepared: the parts are written to it as they come."""
    resp = web.StreamResponse(headers={
        "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        "Cache-Control": "no-store",
    })
    await resp.prepare(request)
    return resp


def part(jpeg: bytes) -> bytes:
    """One JPEG as a part of the stream."""
    head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(jpeg)}\r\n\r\n").encode()
    return head + jpeg + b"\r\n"
