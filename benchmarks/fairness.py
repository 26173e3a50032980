"""Fairness under heavy requests, against the real server on 127.0.0.1.

Starts `python -m app` on a free port (default settings, /score up to 1,000 names), then:

1. for --duration seconds (60), 4 heavy clients in a loop (`n = 10000`, `unique`,
   `top_k = 2`: few names to find, the request that used to hold the model for 16 s;
   after a 429 each waits its Retry-After) and 16 light clients (`n = 1`), each client
   one keep-alive connection;
2. a flood of 100 concurrent large /score requests (1,000 names of 64 characters each)
   while the light clients go on, until every one of them is answered (bounded by the
   server's time limit).

Reports latency percentiles of the light requests (both phases), names per second for
the heavy ones, the count of every status, and the server's peak resident memory. Light
requests that time out (no answer in 30 s, or 504) count as light timeouts.

    python benchmarks/fairness.py [--duration S]
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
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from app.local_server import LocalServer
from benchmarks.client import Connection, Reply, peak_rss_mb, percentile

HEAVY = {"n": 10_000, "unique": True, "top_k": 2}
LIGHT_TIMEOUT_S = 30.0


@dataclass
class Tally:
    light_ms: list[float] = field(default_factory=list)
    light_timeouts: int = 0
    heavy_names: int = 0
    seconds: float = 0.0
    server: str = ""  # what the server measured of its own speed, at the end
    statuses: Counter[str] = field(default_factory=Counter)  # "light 200", "score 429", ...

    def count(self, kind: str, reply: Reply) -> None:
        self.statuses[f"{kind} {reply.status or 'none'}"] += 1

    @property
    def errors_5xx(self) -> int:
        return sum(n for key, n in self.statuses.items() if key.split()[1].startswith("5"))


async def light_client(port: int, tally: Tally, stop: asyncio.Event) -> None:
    conn = Connection(port)
    while not stop.is_set():
        reply = await conn.post("/generate", {"n": 1}, timeout=LIGHT_TIMEOUT_S)
        tally.count("light", reply)
        if reply.status == 200:
            tally.light_ms.append(reply.seconds * 1000)
        elif reply.status in (0, 504):
            tally.light_timeouts += 1
    conn.close()


async def heavy_client(port: int, tally: Tally, until: float) -> None:
    """Heavy requests back to back until `until`; the one running then is abandoned (the
    server drops its work), so the phase lasts its duration."""
    conn = Connection(port)
    while (left := until - time.perf_counter()) > 0:
        reply = await conn.post("/generate", HEAVY, timeout=left)
        if reply.status == 0 and time.perf_counter() >= until:
            break
        tally.count("heavy", reply)
        if reply.status == 200:
            tally.heavy_names += len(reply.json()["names"])
        elif reply.status == 429:
            wait = float(reply.headers.get("retry-after", "1"))
            await asyncio.sleep(min(wait, max(until - time.perf_counter(), 0)))
    conn.close()


async def flood(port: int, tally: Tally, requests: int) -> list[Reply]:
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = ["".join(rng.choice(letters) for _ in range(64)) for _ in range(1000)]
    conns = [Connection(port) for _ in range(requests)]
    replies = await asyncio.gather(*(c.post("/score", {"names": names}, 90) for c in conns))
    for conn, reply in zip(conns, replies, strict=True):
        tally.count("score", reply)
        conn.close()
    return list(replies)


GAUGES = ("namegen_step_rows", "namegen_row_step_seconds", "namegen_model_busy")


async def server_speed(port: int) -> str:
    reply = await Connection(port).request("GET", "/metrics")
    found = {}
    for line in reply.body.decode().splitlines():
        name, _, value = line.partition(" ")
        if name in GAUGES:
            found[name.removeprefix("namegen_")] = f"{float(value):.3g}"
    return " ".join(f"{k}={v}" for k, v in found.items())


async def run(port: int, duration: float) -> tuple[Tally, Tally]:
    heavy_phase, flood_phase = Tally(), Tally()
    stop = asyncio.Event()
    lights = [asyncio.create_task(light_client(port, heavy_phase, stop)) for _ in range(16)]
    started = time.perf_counter()
    heavies = [heavy_client(port, heavy_phase, started + duration) for _ in range(4)]
    await asyncio.gather(*heavies)
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*lights)
    heavy_phase.seconds = elapsed
    heavy_phase.server = await server_speed(port)

    stop = asyncio.Event()
    lights = [asyncio.create_task(light_client(port, flood_phase, stop)) for _ in range(16)]
    started = time.perf_counter()
    await flood(port, flood_phase, 100)
    flood_phase.seconds = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*lights)
    flood_phase.server = await server_speed(port)
    return heavy_phase, flood_phase


def report(label: str, tally: Tally) -> None:
    light = tally.light_ms
    p50 = statistics.median(light) if light else float("nan")
    statuses = " ".join(f"{k.replace(' ', '_')}={v}" for k, v in sorted(tally.statuses.items()))
    p99, most = percentile(light, 0.99), max(light, default=float("nan"))
    print(
        f"{label:<6} {tally.seconds:.0f}s light: {len(light)} answered p50={p50:.1f} ms"
        f" p99={p99:.1f} ms max={most:.1f} ms timeouts={tally.light_timeouts}"
        f" | heavy names={tally.heavy_names} | {statuses} | server: {tally.server}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of phase 1")
    args = parser.parse_args()
    server = LocalServer({"NAMEGEN_MAX_SCORE_NAMES": "1000"})
    try:
        heavy_phase, flood_phase = asyncio.run(run(server.port, args.duration))
        peak = peak_rss_mb(server.proc.pid)
    finally:
        server.stop()
    report("heavy", heavy_phase)
    report("flood", flood_phase)
    light = heavy_phase.light_ms + flood_phase.light_ms
    seconds = heavy_phase.seconds or 1
    print(
        f"fairness: light_p50_ms={statistics.median(light):.1f}"
        f" light_p99_ms={percentile(light, 0.99):.1f}"
        f" light_timeouts={heavy_phase.light_timeouts + flood_phase.light_timeouts}"
        f" heavy_names_per_s={heavy_phase.heavy_names / seconds:.1f}"
        f" errors_5xx={heavy_phase.errors_5xx + flood_phase.errors_5xx}"
        f" peak_rss_mb={peak:.1f}"
    )


if __name__ == "__main__":
    main()
