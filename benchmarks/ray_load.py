"""Load on Ray Serve: 64 concurrent clients against 2 replicas, then an overload.

Starts a local Ray (every server on loopback), Serve's proxy on a free port of 127.0.0.1
and app.serve_ray's deployment with --replicas replicas (autoscaling held there), and
runs benchmarks/load.py's locust clients: /generate n = 1 back to back for --duration
seconds after --warmup. Reports requests/s, p50/p99 latency, 5xx and unanswered
requests. Then the overload phase of load.py against a deployment that holds 4 requests
per replica with a proxy queue of 8, 2,000 names a request: how fast the refused get
their 429. Ray is shut down at the end. Compare with `python benchmarks/load.py`, the
same clients against one uvicorn server (docs/ray.md quotes both).

    python benchmarks/ray_load.py [--duration S] [--clients N] [--replicas N] [--warmup S]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # as in load.py: benchmarks/http.py would shadow http
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray: loopback
os.environ.setdefault("NAMEGEN_DEVICE", "cpu")

import argparse
import statistics
import time

import ray
from ray import serve

from app.local_server import free_port
from app.serve_ray import deployment
from benchmarks.load import Tally, hammer, p


def held_at(replicas: int) -> dict[str, int]:
    return {
        "min_replicas": replicas,
        "initial_replicas": replicas,
        "max_replicas": replicas,
        "target_ongoing_requests": 32,
    }


def report(label: str, clients: int, tally: Tally) -> None:
    ok = tally.of(200)
    print(
        f"{label:<10} clients={clients} seconds={tally.elapsed:.1f} requests={tally.answered} "
        f"rps={tally.answered / tally.elapsed:.1f} p50={statistics.median(ok) if ok else 0:.1f} ms "
        f"p99={p(ok, 0.99):.1f} ms 429={len(tally.of(429))} 5xx={tally.errors_5xx} "
        f"unanswered={tally.unanswered}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    args = parser.parse_args()

    started = time.monotonic()
    ray.init(num_cpus=args.replicas, include_dashboard=False, log_to_driver=False)
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = deployment(autoscaling_config=held_at(args.replicas))
        serve.run(app.bind({}), name="namegen", route_prefix="/")
        print(f"ray: replicas={args.replicas} ready in {time.monotonic() - started:.1f} s")
        hammer(base, {"n": 1}, args.clients, args.warmup)
        report(
            f"serve x{args.replicas}",
            args.clients,
            hammer(base, {"n": 1}, args.clients, args.duration),
        )

        serve.delete("namegen")
        tight = deployment(
            autoscaling_config=held_at(args.replicas), max_ongoing_requests=4, max_queued_requests=8
        )
        serve.run(tight.bind({}), name="tight", route_prefix="/")
        overload = hammer(base, {"n": 2_000}, args.clients, min(args.duration, 20))
        rejected, served = overload.of(429), overload.of(200)
        print(
            f"overload   ongoing=4/replica queue=8 clients={args.clients}: 429={len(rejected)} "
            f"p50={p(rejected, 0.5):.1f} ms p99={p(rejected, 0.99):.1f} ms | 200={len(served)} "
            f"p50={p(served, 0.5):.1f} ms | 5xx={overload.errors_5xx} "
            f"unanswered={overload.unanswered}",
            flush=True,
        )
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
