"""uvicorn's httptools protocol with a bound on the request head (request line and headers).

uvicorn bounds the head only with its pure-Python h11 parser; httptools (the fast C parser)
keeps reading headers as long as they come. This protocol counts the bytes of each request's
head as they arrive and answers 431 and closes the connection past the setting
``api.max_header_bytes``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from order_dispatch.settings import get_settings

_END = b"\r\n\r\n"
_STATUS = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that refuses a request head above ``max_head_bytes``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = get_settings().api.max_header_bytes
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            room = self.max_head_bytes - self._head_bytes
            if len(data) > room and _END not in data[: max(0, room) + len(_END)]:
                self._refuse()
                return
            self._head_bytes += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def _refuse(self) -> None:
        body = b"request head too large\n"
        self.transport.write(
            _STATUS
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()
