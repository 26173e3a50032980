"""Batching, back-pressure, time limits and shutdown against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.local_server import LocalServer
from tests.app.conftest import UNLABELLED
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def serve(**env: str) -> LocalServer:
    # the lighter checkpoint: admission estimates from speeds measured on a loaded
    # machine can refuse the labelled one's n = 10000 outright (see test_fairness)
    return LocalServer({"NAMEGEN_CHECKPOINT": str(UNLABELLED), **env})


@pytest.fixture
def server_factory() -> Iterator[Callable[..., str]]:
    servers: list[LocalServer] = []

    def factory(**env: str) -> str:
        servers.append(serve(**env))
        return servers[-1].base

    yield factory
    for server in servers:
        server.stop()


async def post_all(base: str, bodies: list[dict], timeout: float = 60) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        return await asyncio.gather(*(client.post("/generate", json=b) for b in bodies))


def metric(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def test_concurrent_seeded_requests_match_their_solo_answers(
    server_factory: Callable[..., str],
) -> None:
    base = server_factory(NAMEGEN_BATCH_WINDOW_MS="20")
    bodies = [
        {"n": 20 + i, "seed": i, "temperature": 0.5 + i / 10, "top_k": 3 + i % 5} for i in range(12)
    ]
    together = asyncio.run(post_all(base, bodies))
    assert metric(base, "namegen_batch_requests_sum") > metric(base, "namegen_batch_requests_count")
    for body, response in zip(bodies, together, strict=True):
        alone = httpx.post(f"{base}/generate", json=body, timeout=30)
        assert [g["name"] for g in response.json()["names"]] == [
            g["name"] for g in alone.json()["names"]
        ]


def test_full_queue_answers_429_at_once(server_factory: Callable[..., str]) -> None:
    base = server_factory(NAMEGEN_MAX_QUEUE="2", NAMEGEN_BATCHING="false")
    started = time.perf_counter()
    responses = asyncio.run(post_all(base, [{"n": 10_000, "seed": i} for i in range(12)]))
    codes = [r.status_code for r in responses]
    assert codes.count(200) >= 1 and codes.count(429) >= 1, codes
    assert set(codes) <= {200, 429}
    rejected = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in rejected)
    assert all(r.json()["error"]["code"] == "too_many_requests" for r in rejected)
    assert all(r.elapsed.total_seconds() < 5.0 for r in rejected)  # not after the work
    assert time.perf_counter() - started < 60


def test_generate_that_runs_out_of_time_returns_what_it_found(
    server_factory: Callable[..., str],
) -> None:
    # overbooked on purpose (admit_fraction 10): admitted, then out of time
    base = server_factory(NAMEGEN_REQUEST_TIMEOUT_S="0.5", NAMEGEN_ADMIT_FRACTION="10")
    body = {"n": 10_000, "temperature": 3, "max_length": 64, "seed": 1}
    started = time.perf_counter()
    response = httpx.post(f"{base}/generate", json=body, timeout=60)
    assert time.perf_counter() - started < 10  # answered, not left to a client timeout
    assert response.status_code == 200
    out = response.json()
    assert out["complete"] is False and out["stopped"] == "time"
    assert len(out["names"]) < 10_000 and out["sampled"] == len(out["names"])
    assert metric(base, "namegen_stopped_by_time_total") == 1
    assert metric(base, "namegen_timeouts_total") == 0


def test_client_that_leaves_has_its_queued_work_dropped(server_factory: Callable[..., str]) -> None:
    base = server_factory(NAMEGEN_BATCHING="false")

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            busy = asyncio.ensure_future(client.post("/generate", json={"n": 10_000}))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.TimeoutException):  # gives up while queued
                await client.post("/generate", json={"n": 10_000}, timeout=0.1)
            assert (await busy).status_code == 200

    asyncio.run(scenario())
    deadline = time.monotonic() + 10
    while metric(base, "namegen_dropped_total") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(base, "namegen_dropped_total") >= 1


def test_sigterm_lets_in_flight_requests_finish() -> None:
    server = serve(NAMEGEN_BATCHING="false")
    proc, base = server.proc, server.base

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            calls = [
                asyncio.ensure_future(client.post("/generate", json={"n": 10_000, "seed": i}))
                for i in range(3)
            ]
            await asyncio.sleep(0.2)
            os.kill(proc.pid, signal.SIGTERM)
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(len(r.json()["names"]) == 10_000 for r in responses)
    # uvicorn finishes the requests, shuts down, then re-raises the signal it caught
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_load_benchmark_runs_and_prints_its_summary_line() -> None:
    """The benchmark's tool chain (servers, locust client, per-status record) works; its
    figures are the benchmark's business, not this test's."""
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/load.py",
            "--duration",
            "2",
            "--clients",
            "4",
            "--warmup",
            "1",
            "--burst",
            "10",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(
        r"load: rps_batched=([\d.]+) rps_unbatched=([\d.]+) ratio=([\d.]+)x "
        r"errors_5xx=(\d+) unanswered=(\d+) rss_growth_mb=(-?[\d.]+)",
        last,
    )
    assert match, last
    assert float(match[1]) > 0 and float(match[2]) > 0
    assert match[4] == "0" and match[5] == "0"
    assert "overload" in done.stdout and "429=" in done.stdout
    assert "burst      10 concurrent n=10000: " in done.stdout
