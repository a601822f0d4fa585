"""JSON errors and bodies for the HTTP API."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def json_body(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object, or the 400 response to send instead."""
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        return error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object")
    return data
