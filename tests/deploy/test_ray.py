"""namegen on Ray Serve (app/serve_ray.py, deploy/ray/serve_config.yaml), on a real Ray.

One local Ray for the module: 2 CPUs, no dashboard, every server on loopback
(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes the node's address 127.0.0.1), Serve's proxy
on a free port of 127.0.0.1. Two replicas of a shipped checkpoint answer the pinned
requests alike; one is killed under a loop of requests and Serve replaces it; a
deployment that can hold one request refuses the rest with 429 at once.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest
import yaml

with warnings.catch_warnings():
    # Ray's pydantic models use keywords that pydantic 2 deprecates (Ray's to change)
    warnings.simplefilter("ignore", DeprecationWarning)
    ray = pytest.importorskip("ray", reason="Ray Serve is an optional extra: pip install '.[ray]'")
    from ray import serve
    from ray._private import ray_constants
    from ray.serve.schema import ServeDeploySchema

    from app.serve_ray import DEPLOYMENT_OPTIONS, REPLICA_HEADER, build, deployment

from app.local_server import free_port
from tests.conftest import REPO

CONFIG = REPO / "deploy" / "ray" / "serve_config.yaml"
PINNED: dict[str, Any] = json.loads(
    (REPO / "tests" / "fixtures" / "shipped_outputs.json").read_text(encoding="utf-8")
)
# Half a CPU each: the two replicas, a replacement while the killed one is cleaned up and
# the one-request deployment fit in the 2 CPUs given to Ray.
HALF_CPU = {"ray_actor_options": {"num_cpus": 0.5}}
TWO = {"min_replicas": 2, "initial_replicas": 2, "max_replicas": 2, "target_ongoing_requests": 8}
ONE = {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 1, "target_ongoing_requests": 1}


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return loaded


def test_the_config_file_is_valid_and_restates_the_defaults() -> None:
    app = ServeDeploySchema.model_validate(config()).applications[0]
    assert app.import_path == "app.serve_ray:build"
    assert config()["http_options"]["host"] == "127.0.0.1"
    (options,) = config()["applications"][0]["deployments"]
    assert options.pop("name") == "Namegen"
    assert options == DEPLOYMENT_OPTIONS


def test_build_refuses_a_bad_setting_before_any_replica_starts() -> None:
    with pytest.raises(ValueError, match="max_n"):
        build({"max_n": "0"})


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # for the processes Ray starts
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # read at import, here too
        mp.setenv("NAMEGEN_DEVICE", "cpu")
        # the pinned outputs are the checkpoint shipped before labels came
        mp.setenv("NAMEGEN_CHECKPOINT", str(REPO / "checkpoints" / "babynames-2017"))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            port = free_port()
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            serve.run(
                deployment(**HALF_CPU, autoscaling_config=TWO).bind({}),
                name="namegen",
                route_prefix="/",
            )
            yield f"http://127.0.0.1:{port}"
        finally:
            serve.shutdown()
            ray.shutdown()


@pytest.mark.slow
def test_nothing_of_ray_listens_beyond_loopback(base: str) -> None:
    listening = {
        (p.name(), c.laddr.ip, c.laddr.port)
        for p in psutil.Process().children(recursive=True)
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert any(port == int(base.rsplit(":", 1)[1]) for _, _, port in listening)
    beyond = {
        (name, ip, port)
        for name, ip, port in listening
        if not ip.removeprefix("::ffff:").startswith("127.") and ip != "::1"
    }
    assert not beyond


@pytest.mark.slow
@pytest.mark.parametrize("case", PINNED["generate"], ids=lambda c: json.dumps(c["request"]))
def test_both_replicas_give_the_pinned_names(base: str, case: dict[str, Any]) -> None:
    """Until each of the two replicas has answered (Serve picks, not us)."""
    names: dict[str, list[str]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(40):
            r = client.post("/generate", json=case["request"])
            assert r.status_code == 200, r.text
            names[r.headers[REPLICA_HEADER]] = [g["name"] for g in r.json()["names"]]
            if len(names) == 2:
                break
    assert len(names) == 2
    assert all(got == case["names"] for got in names.values())


@pytest.mark.slow
def test_the_routes_schemas_errors_and_metrics_are_the_apps(base: str) -> None:
    from app.main import create_app

    with httpx.Client(base_url=base, timeout=30) as client:
        schema = client.get("/openapi.json").json()
        bad = client.post("/generate", json={"n": 0, "temperature": "hot"})
        metrics = client.get("/metrics")
    expected = create_app().openapi()
    assert schema["paths"] == expected["paths"]
    assert schema["components"] == expected["components"]
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["error"]["details"]}
    assert fields == {"n", "temperature"}
    assert "namegen_requests_total" in metrics.text


@dataclass
class Outcome:
    client: int
    status: int  # 0: no response
    replica: str | None
    started: float  # time.monotonic() when the request was sent


@pytest.mark.slow
def test_a_killed_replica_loses_only_the_requests_it_held(base: str) -> None:
    """Four clients post back to back; one replica is killed; each client may lose the
    one request it had in flight there, and nothing else, while Serve starts another."""
    clients, stop = 4, threading.Event()
    outcomes: list[Outcome] = []

    def loop(client: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    r = http.post("/generate", json={"n": 2})
                    replica = r.headers.get(REPLICA_HEADER)
                    outcomes.append(Outcome(client, r.status_code, replica, started))
                except httpx.TransportError:
                    outcomes.append(Outcome(client, 0, None, started))

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len({o.replica for o in outcomes}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = {o.replica for o in outcomes if o.status == 200}
        assert len(before) == 2, "both replicas answer before the kill"
        victim = sorted(before)[0]
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        killed_at, kill_time = len(outcomes), time.monotonic()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if any(o.replica not in before for o in outcomes if o.status == 200):
                break
            time.sleep(0.2)
        replaced_at = len(outcomes)
        time.sleep(1)  # the new replica in the rotation
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    new = {o.replica for o in outcomes if o.status == 200} - before
    assert len(new) == 1, "Serve started a replica in place of the killed one"
    failed = [o for o in outcomes if o.status != 200]
    assert all(n <= 1 for n in Counter(o.client for o in failed).values()), failed
    # a request the victim held may end (failed) after its replacement answers others;
    # every request sent after the kill is answered
    assert all(o.status == 200 for o in outcomes[replaced_at:] if o.started > kill_time)
    assert all(o.replica != victim for o in outcomes[killed_at + clients :] if o.status == 200)


@pytest.mark.slow
def test_an_overloaded_deployment_refuses_with_429_at_once(base: str) -> None:
    """One replica holding one request, a queue of one: of 12 slow requests sent
    together, those beyond are refused by Serve's proxy with 429 and Retry-After, and
    none gets a 5xx."""
    app = deployment(
        **HALF_CPU, autoscaling_config=ONE, max_ongoing_requests=1, max_queued_requests=1
    )
    serve.run(app.bind({}), name="tight", route_prefix="/tight")
    start = threading.Barrier(12)
    responses: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            start.wait()
            responses.append(http.post("/tight/generate", json={"n": 10_000}))

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    serve.delete("tight")
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    assert statuses[200] >= 1 and statuses[429] >= 1
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 429)
