"""This checkout's server against another checkout's, side by side, over HTTP.

Starts `python -m app` from each repository (this one and --against, e.g. a `git
worktree` of an earlier commit) on free ports of 127.0.0.1, both on the same checkpoint,
then sends the same requests to both in turns (alternating which goes first), so that
the machine's load falls on both alike: /generate n = 1, 100 and 10,000 and /score of 100
names. Prints each side's median and best latency and the ratio of the medians.

    git worktree add /tmp/base 780ea5d
    python benchmarks/http_compare.py --against /tmp/base [--checkpoint DIR]

Last line: `http_compare: gen1=<ratio> gen100=<ratio> score100=<ratio> gen10000=<ratio>`
(this checkout's median over the other's: below 1 is faster).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

from app.local_server import free_port

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia", "harper"]


def start(repo: Path, checkpoint: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning"],
        cwd=repo,
        env={**os.environ, "NAMEGEN_DEVICE": "cpu", "NAMEGEN_CHECKPOINT": str(checkpoint)},
        stdout=subprocess.DEVNULL,  # an older server may log every request
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"http_compare: the server of {repo} exited")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"http_compare: the server of {repo} did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other repository")
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "babynames-2017")
    parser.add_argument("--requests", type=int, default=300, help="of n = 1; fewer of others")
    args = parser.parse_args()
    servers = {"this": start(REPO, args.checkpoint.resolve())}
    servers["other"] = start(args.against.resolve(), args.checkpoint.resolve())
    clients = {k: httpx.Client(base_url=base, timeout=120) for k, (_, base) in servers.items()}
    r = args.requests
    cases: list[tuple[str, str, Callable[[int], dict[str, Any]], int]] = [
        ("gen1", "/generate", lambda i: {"n": 1, "seed": i}, r),
        ("gen100", "/generate", lambda i: {"n": 100, "seed": i}, r // 3),
        ("score100", "/score", lambda i: {"names": (NAMES * 12)[:100]}, r // 3),
        ("gen10000", "/generate", lambda i: {"n": 10000, "seed": i}, max(4, r // 40)),
    ]
    ratios = {}
    try:
        for label, path, body, reps in cases:
            times: dict[str, list[float]] = {k: [] for k in clients}
            for i in range(reps):
                order = list(clients.items())
                for key, client in order if i % 2 else order[::-1]:
                    started = time.perf_counter()
                    response = client.post(path, json=body(i))
                    times[key].append(time.perf_counter() - started)
                    if response.status_code != 200:
                        raise SystemExit(f"http_compare: {key} {path} {response.status_code}")
            med = {k: 1000 * statistics.median(v) for k, v in times.items()}
            best = {k: 1000 * min(v) for k, v in times.items()}
            ratios[label] = med["this"] / med["other"]
            print(
                f"{label:9} this p50 {med['this']:8.2f} ms best {best['this']:8.2f} | other p50 "
                f"{med['other']:8.2f} ms best {best['other']:8.2f} | ratio {ratios[label]:.2f}",
                flush=True,
            )
    finally:
        for proc, _ in servers.values():
            proc.terminate()
    print("http_compare: " + " ".join(f"{k}={v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
