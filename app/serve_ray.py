"""namegen on Ray Serve: the app of app.main, unchanged, in replicas behind Serve's proxy.

    serve run deploy/ray/serve_config.yaml        # or: make serve-ray

Each replica is one Ray actor that builds the FastAPI app with `create_app` and runs its
lifespan, so it loads the checkpoint once and has its own batching worker, queue and
metrics, exactly as one `uvicorn app.main:app` would. Serve's proxy spreads requests over
the replicas, adds and removes replicas on the number of ongoing requests, and refuses
(429, Retry-After) what neither the replicas nor its own short queue can take. Every
response says which replica answered in the X-Replica header. Needs `namegen[ray]`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.main import create_app

REPLICA_HEADER = "X-Replica"

# The defaults behind deploy/ray/serve_config.yaml, which restates them: a deployment
# built here without that file (a test, a script) gets the same back-pressure.
DEPLOYMENT_OPTIONS: dict[str, Any] = {
    # One torch thread per replica (NAMEGEN_TORCH_THREADS=1): parallelism comes from
    # replicas and from batching inside each, so a replica is worth one core.
    "ray_actor_options": {"num_cpus": 1},
    # Concurrent requests are merged into one model batch, so a replica does best with
    # many in hand at once: 64 clients made batches of about 20 on one server.
    "max_ongoing_requests": 64,
    # Beyond what the replicas hold, a short queue at the proxy; past it, 429 at once.
    # The app's own 429 (its queue of NAMEGEN_MAX_QUEUE) stays behind this one.
    "max_queued_requests": 128,
    "backpressure_config": {"status_code": 429, "retry_after_s": 1},
    "autoscaling_config": {
        "min_replicas": 1,
        "initial_replicas": 2,
        "max_replicas": 4,
        # a replica with more ongoing requests than this on average asks for a twin
        "target_ongoing_requests": 32,
    },
    "health_check_period_s": 5,
}


class ReplicaHeaderMiddleware:
    """Names the replica on every response, refusals and errors included."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app, self.header = app, (REPLICA_HEADER.lower().encode(), replica.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


def bind_grpc_to_node_address() -> None:
    """Serve (2.60) starts a gRPC server in every replica, for calls between deployments
    (this app makes none), on `[::]:0`: every interface, whatever http_options.host says.
    Bind it to the node's address instead: loopback on a machine alone (with
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, as Ray's own servers then are), the node's IP in
    a cluster. tests/deploy/test_ray.py checks that nothing of Ray listens beyond
    loopback; the pin on ray[serve] keeps this private name where it is."""
    replica: Any = importlib.import_module("ray.serve._private.replica")  # private: untyped
    add_port = replica.add_port_to_grpc_server
    if getattr(add_port, "namegen", False):
        return
    node_ip: Any = ray.util.get_node_ip_address  # untyped in Ray

    def add_port_on_node(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            host, port = str(node_ip()), address.rsplit(":", 1)[1]
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return int(add_port(server, address))

    add_port_on_node.namegen = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_on_node


@serve.ingress()  # the app is built on the replica, by __serve_build_asgi_app__
class Namegen:
    """One replica. `settings` are Settings fields by name (NAMEGEN_* variables fill in
    the rest): plain strings cross from the driver, the app never leaves the replica."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        bind_grpc_to_node_address()  # before Serve starts that server, once this returns
        self.settings = Settings(**(settings or {}))  # type: ignore[arg-type]
        self.fastapi: FastAPI | None = None  # (`app` is a property of Serve's wrapper)

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Serve runs this app's lifespan (the checkpoint loads there) before the replica
        # takes traffic, and its shutdown when the replica stops.
        app = self.fastapi = create_app(self.settings)
        replica = serve.get_replica_context().replica_id.to_full_id_str()
        app.add_middleware(ReplicaHeaderMiddleware, replica=replica)
        return app

    def check_health(self) -> None:
        """Serve replaces a replica whose check fails: one whose model is not serving."""
        if self.fastapi is None or self.fastapi.state.service is None:
            raise RuntimeError("the model is not loaded")


def deployment(**options: Any) -> Any:
    """The Serve deployment, DEPLOYMENT_OPTIONS overridden by `options`."""
    return serve.deployment(Namegen, name="Namegen", **{**DEPLOYMENT_OPTIONS, **options})


def build(args: dict[str, str]) -> Application:
    """Serve's application builder: the config file's `args` (or `key=value` after
    `serve run app.serve_ray:build`) are Settings fields. Checked here, so a bad one
    stops `serve run` with pydantic's message before any replica starts."""
    args = dict(args)
    if "checkpoint" in args:  # replicas may not share the driver's working directory
        args["checkpoint"] = str(Path(args["checkpoint"]).resolve())
    Settings(**args)  # type: ignore[arg-type]
    app: Application = deployment().bind(args)
    return app
