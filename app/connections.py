"""Limits at the connection, below the app: uvicorn's HTTP/1.1 protocol (httptools) with
the limits it lacks.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but nothing else: a
connection that never sends a byte stays open for good, one that sends its request a
byte at a time is never timed out, and a header that never ends is buffered whole, its
parsing slower the longer it grows (the event loop stalled for 4 s at 64 MB). Its
`limit_concurrency` answers 503 to requests over the limit, which would be server errors
for a client's behaviour. This protocol adds, per connection:

- the request line and headers ("head") at most `max_header_bytes`: beyond, 431 and the
  connection closed, after at most one read past the limit;
- `header_timeout_s` to receive the head, from the connection's opening (or, on a
  keep-alive connection, from the request's first byte): then 408 and closed;
- `body_timeout_s` to receive the body once the head is in: then the connection closed
  (the handler sees the client gone);
- at most `max_connections` open at once: a connection beyond is closed as it opens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def of(cls, s: Settings) -> ConnectionLimits:
        return cls(s.max_header_bytes, s.header_timeout_s, s.body_timeout_s, s.max_connections)


def _response(status: str, message: str) -> bytes:
    body = message.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits]
    refused = False  # over max_connections: closed as it opened
    in_head = True  # a request's head is awaited or arriving
    head_bytes = 0  # bytes received since the head began (at most one read beyond it)
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.refused, self.transport = True, transport
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.in_head and self.head_bytes > self.limits.max_header_bytes:
            self._close_with(
                "431 Request Header Fields Too Large",
                f"request line and headers longer than {self.limits.max_header_bytes} bytes",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        if self.deadline is None:  # a keep-alive connection's next request
            self._arm(self.limits.header_timeout_s)

    def on_headers_complete(self) -> None:
        self.in_head, self.head_bytes = False, 0
        self._arm(self.limits.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self.in_head = True  # what comes next is the next request's head
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if self.in_head:
            self._close_with("408 Request Timeout", "request not received in time")
        elif not self.transport.is_closing():  # the handler may be reading the body
            self.transport.close()

    def _close_with(self, status: str, message: str) -> None:
        if not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:  # no response under way
                self.transport.write(_response(status, message))
            self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to hand uvicorn (`http=`), with these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
