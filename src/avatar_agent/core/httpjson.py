"""JSON in and out of the HTTP API, and the web pages that carry their configuration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

# The customer's and the operator's pages and their scripts, shipped inside the package.
WEB_DIR = Path(str(files("avatar_agent").joinpath("web")))


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def json_body(
    request: web.Request, limit: int | None = None
) -> dict[str, Any] | web.Response:
    """The request's JSON object, or the 4xx response to send instead.

    With `limit`, a body over that many bytes is refused (413) before it is read whole,
    whatever the app's own body limit is.
    """
    if limit is None:
        body = await request.read()
    else:
        if request.content_length is not None and request.content_length > limit:
            return error(413, f"request body over {limit} bytes")
        # One read() returns what has arrived so far, not the whole body: read on until
        # the end of the body (or one byte past the limit).
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            part = await request.content.read(limit + 1 - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
        if size > limit:
            return error(413, f"request body over {limit} bytes")
        body = b"".join(parts)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error(400, "body is not valid JSON")
    except RecursionError:  # nesting deeper than the parser's stack
        return error(400, "body is nested too deeply")
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object")
    return data


def read_page(name: str) -> str:
    """A page from WEB_DIR; read once at start-up, since it never changes while running."""
    return (WEB_DIR / name).read_text(encoding="utf-8")


def inject_config(page: str, config: Mapping[str, Any]) -> str:
    """The page with its `{{CONFIG_JSON}}` placeholder replaced by `config` as JSON."""
    # `</` cannot close the script element from inside a JSON string.
    blob = json.dumps(config).replace("</", "<\\/")
    return page.replace("{{CONFIG_JSON}}", blob)
