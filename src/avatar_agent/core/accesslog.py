"""The server's access log: what was asked and how it went, not who asked.

aiohttp's default line carries the client's address, its user agent and the whole
request line with its query string. Here a line is the method, the path without its
query (nothing secret can ride in a URL into the log), the status, the size and the
time taken; the client's address only where the config asks for it
(`server.access_log_client_ip`), e.g. while fending off an abusive client.
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


def access_logger(client_ip: bool) -> type[AbstractAccessLogger]:
    class AccessLog(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            who = f"{request.remote} " if client_ip else ""
            self.logger.info('%s"%s %s" %d %s %.3fs', who, request.method, request.path,
                             response.status, response.body_length, time)

    return AccessLog
