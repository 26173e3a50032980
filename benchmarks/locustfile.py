"""The load benchmark's client: locust users that each POST the same JSON body in a loop.

Run by benchmarks/load.py (headless, 127.0.0.1). Read from the environment:
LOAD_PATH (default /generate), LOAD_BODY (JSON) and LOAD_RECORD, a file that receives
every request's status and latency when the run stops (status 0: no response at all).
Locust's own statistics lump statuses together; the benchmark needs them apart (a 429's
latency is a figure of its own).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import FastHttpUser, constant, events, task

PATH = os.environ.get("LOAD_PATH", "/generate")
BODY: Any = json.loads(os.environ.get("LOAD_BODY", '{"n": 1}'))
RECORD = os.environ.get("LOAD_RECORD")

latencies: dict[int, list[float]] = {}  # status -> milliseconds
span = [float("inf"), 0.0]  # first request sent, last answer received (perf_counter)


class Client(FastHttpUser):
    wait_time = constant(0)  # closed loop: the next request as soon as the last is answered
    network_timeout = 60.0
    connection_timeout = 10.0

    @task
    def post(self) -> None:
        started = time.perf_counter()
        response = self.client.post(PATH, json=BODY)
        done = time.perf_counter()
        status = response.status_code or 0
        latencies.setdefault(status, []).append((done - started) * 1000)
        span[0], span[1] = min(span[0], started), max(span[1], done)


@events.quitting.add_listener
def write_record(**_: Any) -> None:
    if RECORD:
        record = {"latencies_ms": latencies, "seconds": max(0.0, span[1] - span[0])}
        with open(RECORD, "w") as f:
            json.dump(record, f)
