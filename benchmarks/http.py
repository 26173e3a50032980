"""HTTP latency and throughput of the real server (uvicorn on 127.0.0.1).

Starts `uvicorn app.main:app` on a free local port, then measures p50/p99 latency and
requests/s for /generate (n = 1 and 100) and /score (1 and 100 names), with one client
(a synchronous httpx client) and with 16 concurrent clients (httpx's asyncio client), and
the end-to-end time of one /generate of 10,000 names (best of 5). Every loop is bounded in
requests and time; the server is stopped at the end.

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
import statistics
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
        print(f"http: generate1_p50_ms={generate1_p50:.2f} generate10000_ms={min(times):.1f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
