"""Headers every response carries, so a browser confines what our pages may do.

The pages run only their own script files (the config they carry is a JSON data
block, which is never executed), may not be framed by another site, are never
content-sniffed, and send no Referer (call ids live in URLs). The `Server` header
names the product only, not the versions an attacker would look up.
"""

from __future__ import annotations

from aiohttp import web

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Server": "avatar-agent",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An `on_response_prepare` handler: runs for every response, errors and files too."""
    response.headers.update(HEADERS)
