"""Load: 64 concurrent clients against the real server, cross-request batching on and off.

Starts `uvicorn app.main:app` on 127.0.0.1 (a free port) once with batching and once
without, and each time runs 64 concurrent locust users (headless, FastHttpUser, one
connection each, `benchmarks/locustfile.py`) sending `/generate` n = 1 back to back for
--duration seconds (60 by default). Reports requests/s, p50/p99 latency, 5xx count,
unanswered requests (no response at all) and the growth of the server's resident memory
from after warm-up to the end. Then an overload phase: a server with a queue of 8 and 64
clients asking for 2,000 names each, reporting how fast the rejected requests got their
429; and a burst of 200 concurrent requests for 10,000 names at a default server (each
answered 200 or 429, never 504; how fast the 429s come). Every phase is bounded in time;
the servers are stopped at the end.

The client is locust rather than httpx: an httpx client costs about 2 ms of CPU a request,
which on a small machine shares the cores with the server and caps what is measured;
locust's FastHttpUser costs about a fifth of that.

    python benchmarks/load.py [--duration S] [--clients N] [--warmup S] [--burst N]
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
import json
import os
import statistics
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field

from app.local_server import LocalServer
from benchmarks.client import Connection

LOCUSTFILE = REPO / "benchmarks" / "locustfile.py"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Tally:
    latencies: dict[int, list[float]] = field(default_factory=dict)  # status -> ms
    elapsed: float = 0.0

    @property
    def unanswered(self) -> int:
        return len(self.of(0))

    @property
    def answered(self) -> int:
        return sum(len(v) for s, v in self.latencies.items() if s != 0)

    def of(self, status: int) -> list[float]:
        return self.latencies.get(status, [])

    @property
    def errors_5xx(self) -> int:
        return sum(len(v) for s, v in self.latencies.items() if s >= 500)


def hammer(base: str, body: dict[str, object], clients: int, duration: float) -> Tally:
    """`clients` locust users posting `body` to /generate for `duration` seconds; users
    finish the request they are in before stopping, so none is cut off."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "record.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--users",
                str(clients),
                "--spawn-rate",
                str(clients),
                "--run-time",
                f"{duration:g}s",
                "--stop-timeout",
                "60",
                "--host",
                base,
                "--only-summary",
                "--loglevel",
                "ERROR",
                "--exit-code-on-error",
                "0",
            ],
            env={**os.environ, "LOAD_BODY": json.dumps(body), "LOAD_RECORD": str(record)},
            stdout=subprocess.DEVNULL,
            check=True,
            timeout=duration + 120,
        )
        data = json.loads(record.read_text())
    return Tally(
        latencies={int(s): v for s, v in data["latencies_ms"].items()}, elapsed=data["seconds"]
    )


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def phase(
    label: str, clients: int, duration: float, warmup: float, **env: str
) -> tuple[Tally, float]:
    server = LocalServer(env)
    try:
        hammer(server.base, {"n": 1}, clients, warmup)
        rss_before = rss_mb(server.proc.pid)
        tally = hammer(server.base, {"n": 1}, clients, duration)
        growth = rss_mb(server.proc.pid) - rss_before
    finally:
        server.stop()
    ok = tally.of(200)
    print(
        f"{label:<10} clients={clients} seconds={tally.elapsed:.1f} requests={tally.answered} "
        f"rps={tally.answered / tally.elapsed:.1f} p50={statistics.median(ok) if ok else 0:.1f} ms "
        f"p99={p(ok, 0.99):.1f} ms 5xx={tally.errors_5xx} unanswered={tally.unanswered} "
        f"rss_growth={growth:.1f} MB",
        flush=True,
    )
    return tally, growth


async def burst(requests: int) -> int:
    """`requests` concurrent /generate of 10,000 names on a default server, each on its
    own connection, opened first: every one should get 200 or 429, the 429s at once.
    Returns the count of 5xx."""
    server = LocalServer()
    try:
        conns = [Connection(server.port) for _ in range(requests)]
        await asyncio.gather(*(conn.open() for conn in conns))
        replies = await asyncio.gather(
            *(conn.post("/generate", {"n": 10_000, "seed": i}, 120) for i, conn in enumerate(conns))
        )
        for conn in conns:
            conn.close()
    finally:
        server.stop()
    codes = Counter(r.status for r in replies)
    refused = [r.seconds * 1000 for r in replies if r.status == 429]
    served = [r.seconds * 1000 for r in replies if r.status == 200]
    print(
        f"burst      {requests} concurrent n=10000: "
        + " ".join(f"{code or 'none'}={n}" for code, n in sorted(codes.items()))
        + f" | 429 p50={p(refused, 0.5):.1f} ms p99={p(refused, 0.99):.1f} ms"
        f" | 200 p50={p(served, 0.5):.0f} ms max={max(served, default=float('nan')):.0f} ms",
        flush=True,
    )
    return sum(n for code, n in codes.items() if code >= 500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--burst", type=int, default=200, help="concurrent n = 10000 requests")
    args = parser.parse_args()

    batched, growth_b = phase(
        "batched", args.clients, args.duration, args.warmup, NAMEGEN_BATCHING="true"
    )
    unbatched, growth_u = phase(
        "unbatched", args.clients, args.duration, args.warmup, NAMEGEN_BATCHING="false"
    )

    server = LocalServer({"NAMEGEN_MAX_QUEUE": "8", "NAMEGEN_BATCHING": "true"})
    try:
        overload = hammer(server.base, {"n": 2_000}, args.clients, min(args.duration, 20))
    finally:
        server.stop()
    rejected, served = overload.of(429), overload.of(200)
    print(
        f"overload   queue=8 clients={args.clients}: 429={len(rejected)} "
        f"p50={p(rejected, 0.5):.1f} ms p99={p(rejected, 0.99):.1f} ms | 200={len(served)} "
        f"p50={p(served, 0.5):.1f} ms | 5xx={overload.errors_5xx} "
        f"unanswered={overload.unanswered}",
        flush=True,
    )

    burst_5xx = asyncio.run(burst(args.burst))

    rps_b = batched.answered / batched.elapsed
    rps_u = unbatched.answered / unbatched.elapsed
    errors = batched.errors_5xx + unbatched.errors_5xx + overload.errors_5xx + burst_5xx
    unanswered = batched.unanswered + unbatched.unanswered + overload.unanswered
    print(
        f"load: rps_batched={rps_b:.1f} rps_unbatched={rps_u:.1f} ratio={rps_b / rps_u:.2f}x "
        f"errors_5xx={errors} unanswered={unanswered} "
        f"rss_growth_mb={max(growth_b, growth_u):.1f}"
    )


if __name__ == "__main__":
    main()
