"""The app under test serves the shipped checkpoint: the real thing loads in a second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.local_server import LocalServer
from app.main import create_app
from tests.conftest import REPO

CHECKPOINT = REPO / "checkpoints" / "default"
# the checkpoint shipped before labels came: no labels, one direction
UNLABELLED = REPO / "checkpoints" / "babynames-2017"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(checkpoint=CHECKPOINT, device="cpu", max_score_names=100, max_n=10_000)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """A real uvicorn process on 127.0.0.1, on the shipped checkpoint."""
    env = {"NAMEGEN_CHECKPOINT": str(CHECKPOINT), "NAMEGEN_MAX_SCORE_NAMES": "100"}
    with LocalServer(env) as server:
        yield server.base


@pytest.fixture(params=["in_process", "uvicorn"])
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client | TestClient]:
    """Each API test runs against the in-process app and the real server."""
    if request.param == "in_process":
        yield request.getfixturevalue("client")
    else:
        with httpx.Client(base_url=request.getfixturevalue("server"), timeout=30) as c:
            yield c


@pytest.fixture(scope="session")
def unlabelled_server() -> Iterator[str]:
    """A real uvicorn process on a checkpoint without labels or a backward network."""
    with LocalServer({"NAMEGEN_CHECKPOINT": str(UNLABELLED)}) as server:
        yield server.base


@pytest.fixture(params=["in_process", "uvicorn"])
def unlabelled_api(request: pytest.FixtureRequest) -> Iterator[httpx.Client | TestClient]:
    """The in-process app and the real server, on the unlabelled checkpoint."""
    if request.param == "in_process":
        with TestClient(create_app(Settings(checkpoint=UNLABELLED, device="cpu"))) as c:
            yield c
    else:
        with httpx.Client(base_url=request.getfixturevalue("unlabelled_server"), timeout=30) as c:
            yield c


def corpus_names() -> set[str]:
    from model.checkpoint import load_checkpoint

    return set(load_checkpoint(CHECKPOINT).corpus_names)


def repo_path(*parts: str) -> Path:
    return REPO.joinpath(*parts)
