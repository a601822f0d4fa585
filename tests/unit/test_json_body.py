"""`json_body` reads the whole body, however the network splits it."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestServer

from avatar_agent.core.httpjson import json_body

LIMIT = 65536


async def _echo(request: web.Request) -> web.Response:
    data = await json_body(request, LIMIT)
    if isinstance(data, web.Response):
        return data
    return web.json_response({"keys": sorted(data)})


async def _post_in_parts(port: int, body: bytes, parts: int, gap_s: float) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    writer.write(head)
    await writer.drain()
    step = -(-len(body) // parts)
    for i in range(0, len(body), step):
        writer.write(body[i:i + step])
        await writer.drain()
        await asyncio.sleep(gap_s)
    raw = await reader.read()
    writer.close()
    status = int(raw.split(b" ", 2)[1])
    return status, raw.partition(b"\r\n\r\n")[2]


async def test_a_body_split_into_packets_is_read_whole() -> None:
    app = web.Application()
    app.router.add_post("/x", _echo)
    body = json.dumps({"sdp": "v=0\r\n" + "a=x\r\n" * 500, "type": "offer"}).encode()
    async with TestServer(app) as server:
        for parts in (2, 5):
            status, reply = await _post_in_parts(server.port, body, parts, 0.01)
            assert status == 200, reply
            assert json.loads(reply) == {"keys": ["sdp", "type"]}
        # over the limit, however it arrives, is still refused
        big = json.dumps({"sdp": "a" * (LIMIT + 10)}).encode()
        status, _ = await _post_in_parts(server.port, big, 3, 0.01)
        assert status == 413


async def test_deeply_nested_json_is_a_400_not_a_crash() -> None:
    app = web.Application()
    app.router.add_post("/x", _echo)
    body = b'{"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    async with TestServer(app) as server:
        status, reply = await _post_in_parts(server.port, body, 1, 0.0)
    assert status == 400
    assert "nested" in json.loads(reply)["error"]
