"""The app under test serves the shipped checkpoint: the real thing loads in a second."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import REPO

CHECKPOINT = REPO / "checkpoints" / "default"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(checkpoint=CHECKPOINT, device="cpu", max_score_names=100, max_n=10_000)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env={**os.environ, **env},
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not become ready")


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """A real uvicorn process on 127.0.0.1, on the shipped checkpoint."""
    port = free_port()
    proc = start_server(
        {
            "NAMEGEN_CHECKPOINT": str(CHECKPOINT),
            "NAMEGEN_MAX_SCORE_NAMES": "100",
            "NAMEGEN_DEVICE": "cpu",
        },
        port,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(params=["in_process", "uvicorn"])
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client | TestClient]:
    """Each API test runs against the in-process app and the real server."""
    if request.param == "in_process":
        yield request.getfixturevalue("client")
    else:
        with httpx.Client(base_url=request.getfixturevalue("server"), timeout=30) as c:
            yield c


def corpus_names() -> set[str]:
    from model.checkpoint import load_checkpoint

    return set(load_checkpoint(CHECKPOINT).corpus_names)


def repo_path(*parts: str) -> Path:
    return REPO.joinpath(*parts)
