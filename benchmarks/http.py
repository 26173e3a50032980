"""HTTP latency and throughput of the real server (uvicorn on 127.0.0.1).

Starts `uvicorn app.main:app` on a free local port, then measures p50/p99 latency and
requests/s for /generate (n = 1 and 100) and /score (1 and 100 names), with one client
(a synchronous httpx client) and with 16 concurrent clients (httpx's asyncio client), and
the end-to-end time of one /generate of 10,000 names (best of 5). Then the limits at the
connection: n = 1 latency while another client streams a header that never ends, and how
long the server takes to close 300 idle or half-sent connections. Every loop is bounded
in requests and time; the server is stopped at the end.

    python benchmarks/http.py [--requests N] [--checkpoint DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Replace this folder on the path with the repo root: benchmarks/http.py would otherwise
# shadow the standard library's http module.
REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import asyncio
import select
import socket
import statistics
import subprocess
import time
from typing import Any

import httpx

from app.local_server import LocalServer

SCORE_NAMES = [
    "emma",
    "olivia",
    "ava",
    "isabella",
    "sophia",
    "mia",
    "charlotte",
    "amelia",
    "harper",
    "evelyn",
] * 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_one_client(
    base: str, path: str, body: dict[str, Any], requests: int, limit_s: float
) -> tuple[list[float], float, int]:
    """One synchronous client (the asyncio client's own overhead is ~1 ms a request)."""
    latencies: list[float] = []
    errors = 0
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post(path, json=body)  # warm the connection
        started = time.perf_counter()
        deadline = started + limit_s
        while len(latencies) < requests and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = http.post(path, json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            errors += r.status_code != 200
        elapsed = time.perf_counter() - started
    return latencies, len(latencies) / elapsed, errors


async def run_clients(
    base: str, path: str, body: dict[str, Any], clients: int, requests: int, limit_s: float
) -> tuple[list[float], float, int]:
    """`clients` concurrent loops sharing `requests` requests; latencies (ms), req/s, errors."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.perf_counter() + limit_s

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started = time.perf_counter()
            r = await http.post(path, json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        await http.post(path, json=body)  # warm the connection
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, len(latencies) / elapsed, errors


ATTACKER = """
import signal, socket, sys
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
cutoffs, sent = [], 0
while not stop:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
        sock.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Endless: ")
        on_this = 0
        try:
            while not stop:
                on_this += sock.send(b"a" * 16384)
        except OSError:  # cut off
            cutoffs.append(on_this)
        sent += on_this
print(len(cutoffs), sorted(cutoffs)[len(cutoffs) // 2] if cutoffs else 0, sent)
"""


def endless_header(server: LocalServer, requests: int) -> None:
    """n = 1 latency (one client) while another client, a process of its own, streams a
    header that never ends, as fast as the server reads it, connecting again each time
    it is cut off. (A thread of this process would make the measuring client wait for
    the interpreter, which is not the server's doing.)"""
    attacker = subprocess.Popen(
        [sys.executable, "-c", ATTACKER, str(server.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        lat, _, errors = run_one_client(server.base, "/generate", {"n": 1}, requests, 60)
    finally:
        attacker.terminate()
        out, _ = attacker.communicate(timeout=30)
    cutoffs, median_cut, sent = (int(w) for w in out.split())
    cut = f"{cutoffs} cut off after {median_cut / 1024:.0f} KB" if cutoffs else "none cut off"
    print(
        f"endless header: generate n=1 p50={statistics.median(lat):.2f} ms "
        f"p99={percentile(lat, 0.99):.2f} ms errors={errors} | attacker: {cut}, "
        f"{sent / 1e6:.1f} MB sent",
        flush=True,
    )


def idle_sockets(server: LocalServer, count: int) -> None:
    """`count` connections that go quiet (half send nothing, half a partial request):
    how long until the server has closed every one."""
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
    for sock in socks[::2]:
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Le")
    started, open_ = time.perf_counter(), set(socks)
    while open_ and time.perf_counter() - started < 60:
        readable, _, _ = select.select(list(open_), [], [], 1.0)
        for sock in readable:
            try:
                closed = sock.recv(65536) == b""
            except OSError:
                closed = True
            if closed:
                open_.discard(sock)
                sock.close()
    print(
        f"idle sockets: {count} opened, {count - len(open_)} closed by the server within "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    for sock in open_:
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per measurement")
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    args = parser.parse_args()

    server = LocalServer({"NAMEGEN_CHECKPOINT": str(args.checkpoint)})
    base = server.base
    try:
        cases = [
            ("generate n=1", "/generate", {"n": 1}),
            ("generate n=100", "/generate", {"n": 100}),
            ("score 1", "/score", {"names": SCORE_NAMES[:1]}),
            ("score 100", "/score", {"names": SCORE_NAMES}),
        ]
        generate1_p50 = float("nan")
        for label, path, body in cases:
            for clients in (1, 16):
                if clients == 1:
                    lat, rps, errors = run_one_client(base, path, body, args.requests, 60)
                else:
                    lat, rps, errors = asyncio.run(
                        run_clients(base, path, body, clients, args.requests, limit_s=60)
                    )
                p50, p99 = statistics.median(lat), percentile(lat, 0.99)
                if label == "generate n=1" and clients == 1:
                    generate1_p50 = p50
                print(
                    f"{label:<15} clients={clients:<3} requests={len(lat):<5} "
                    f"p50={p50:7.2f} ms p99={p99:7.2f} ms rps={rps:8.1f} errors={errors}",
                    flush=True,
                )

        times = []
        with httpx.Client(base_url=base, timeout=60) as http:
            for seed in range(5):
                started = time.perf_counter()
                r = http.post("/generate", json={"n": 10_000, "seed": seed})
                times.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200 and len(r.json()["names"]) == 10_000, r.text[:200]
        print(
            f"generate n=10000: best {min(times):.1f} ms, median {statistics.median(times):.1f} ms"
        )
        endless_header(server, args.requests)
        idle_sockets(server, 300)
        print(f"http: generate1_p50_ms={generate1_p50:.2f} generate10000_ms={min(times):.1f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
