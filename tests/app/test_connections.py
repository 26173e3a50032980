"""Limits at the connection (app/connections.py) and what happens before routing, with
real sockets against the real server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from app.local_server import LocalServer
from tests.app.conftest import CHECKPOINT

pytestmark = pytest.mark.slow

LIMITS = {
    "NAMEGEN_MAX_HEADER_BYTES": "8192",
    "NAMEGEN_HEADER_TIMEOUT_S": "1",
    "NAMEGEN_BODY_TIMEOUT_S": "1",
    "NAMEGEN_KEEP_ALIVE_S": "1",
    "NAMEGEN_MAX_CONNECTIONS": "40",
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer({"NAMEGEN_CHECKPOINT": str(CHECKPOINT), **LIMITS}) as server:
        yield server


def connect(server: LocalServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed `sock` within `seconds`, and what it sent first."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        pass
    return True, received


def test_endless_header_is_cut_off_while_others_are_served(server: LocalServer) -> None:
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    stop = threading.Event()
    sent = 0

    def stream() -> None:  # a header that never ends, as fast as the server takes it
        nonlocal sent
        try:
            while not stop.is_set():
                sent += sock.send(b"a" * 4096)
        except OSError:
            pass

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        with httpx.Client(base_url=server.base, timeout=10) as client:  # others go on
            codes = [client.post("/generate", json={"n": 1}).status_code for _ in range(20)]
        assert codes == [200] * 20
        closed, reply = closed_within(sock, 10)
    finally:
        stop.set()
        streamer.join()
        sock.close()
    assert closed
    assert reply.startswith(b"HTTP/1.1 431 ") and b"8192 bytes" in reply
    assert sent < 10_000_000  # cut off after about 8 KB, not after megabytes


def test_long_header_line_within_the_limit_is_fine(server: LocalServer) -> None:
    headers = {"X-Long": "a" * 6000}
    assert httpx.get(f"{server.base}/health", headers=headers).status_code == 200


def test_connection_that_sends_nothing_is_closed(server: LocalServer) -> None:
    sock = connect(server)
    closed, reply = closed_within(sock, 15)  # the limit is 1 s; 30 s is the old wait
    sock.close()
    assert closed and reply.startswith(b"HTTP/1.1 408 ")


def test_half_sent_head_and_half_sent_body_are_closed(server: LocalServer) -> None:
    head = connect(server)
    head.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Ty")
    body = connect(server)
    body.sendall(
        b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"n": '
    )
    for sock in (head, body):
        closed, _ = closed_within(sock, 15)
        sock.close()
        assert closed


def test_slow_head_sent_a_byte_at_a_time_is_closed(server: LocalServer) -> None:
    sock = connect(server)
    started = time.monotonic()
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    try:
        for byte in request:  # each byte well within any idle timeout
            sock.sendall(bytes([byte]))
            time.sleep(0.05)
            if time.monotonic() - started > 15:
                break
    except OSError:  # closed by the server: what we want
        pass
    closed, _ = closed_within(sock, 5)
    sock.close()
    assert closed and time.monotonic() - started < 15


def test_idle_keep_alive_connection_is_closed(server: LocalServer) -> None:
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    closed, reply = closed_within(sock, 15)
    sock.close()
    assert closed and reply.startswith(b"HTTP/1.1 200 ")


def test_many_idle_sockets_are_all_closed(server: LocalServer) -> None:
    socks = [connect(server) for _ in range(30)]
    try:
        deadline = time.monotonic() + 15
        for sock in socks:
            closed, _ = closed_within(sock, max(deadline - time.monotonic(), 0.1))
            assert closed
    finally:
        for sock in socks:
            sock.close()


def test_connections_over_the_cap_are_closed_at_once(server: LocalServer) -> None:
    held = [connect(server) for _ in range(40)]
    try:
        time.sleep(0.2)  # all accepted
        extra = connect(server)
        closed, reply = closed_within(extra, 0.9)  # before any timeout of 1 s
        extra.close()
        assert closed and reply == b""
        held[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # the held ones work
        assert held[0].recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()


def test_head_works_on_health_and_ready(server: LocalServer) -> None:
    for path in ("/health", "/ready"):
        response = httpx.head(f"{server.base}{path}")
        assert response.status_code == 200 and response.content == b""


def requests_counted(base: str, endpoint: str, status: int) -> float:
    wanted = f'endpoint="{endpoint}",method="POST",status="{status}"'
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("namegen_requests_total{") and wanted in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_refused_before_routing_are_counted() -> None:
    env = {
        "NAMEGEN_CHECKPOINT": str(CHECKPOINT),
        "NAMEGEN_API_KEYS": "k",
        "NAMEGEN_MAX_BODY_BYTES": "2048",
        "NAMEGEN_REQUEST_TIMEOUT_S": "0.001",  # any real work is refused
    }
    with LocalServer(env) as server:
        base, key = server.base, {"X-API-Key": "k"}
        assert httpx.post(f"{base}/generate", json={"n": 1}).status_code == 401
        big = {"names": ["a" * 60] * 100}
        assert httpx.post(f"{base}/score", json=big, headers=key).status_code == 413
        busy = httpx.post(f"{base}/generate", json={"n": 10_000}, headers=key)
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        assert requests_counted(base, "/generate", 401) == 1
        assert requests_counted(base, "/score", 413) == 1
        assert requests_counted(base, "/generate", 429) == 1
