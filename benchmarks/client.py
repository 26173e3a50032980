"""A lean HTTP/1.1 client over asyncio streams, for benchmarks that run many clients in
one process: an httpx request costs about 2 ms of CPU, on the same cores as the server
it measures; this one a tenth of that. One keep-alive connection per client, JSON
bodies, responses with a content-length (what the server sends)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int  # 0: no answer (the connection failed or the client timed out)
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: Any, timeout: float = 60) -> Reply:
        return await self.request("POST", path, json.dumps(body).encode(), timeout)

    async def request(
        self, method: str, path: str, body: bytes = b"", timeout: float = 60
    ) -> Reply:
        """One request; on any failure the connection is closed (the next request opens
        a new one) and the reply has status 0."""
        started = time.perf_counter()
        for attempt in range(2):
            reused = self.writer is not None
            left = started + timeout - time.perf_counter()
            try:
                request = self._request(method, path, body, started)
                return await asyncio.wait_for(request, left)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.close()
                if not (reused and attempt == 0):  # else the server closed it while idle
                    break
            except TimeoutError:
                self.close()
                break
        return Reply(0, {}, b"", time.perf_counter() - started)

    async def _request(self, method: str, path: str, body: bytes, started: float) -> Reply:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(int(status_line.split()[1]), headers, data, time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peak_rss_mb(pid: int) -> float:
    """The most memory the process has held resident (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")
