"""A tiny conditional checkpoint to serve, for the label tests: a WaveNet trained for a few
seconds on tests/training's synthetic corpus, whose names carry their labels (girls' end in
'a', boys' in 'o'; a decade's begin with its letters). The shipped checkpoint has no labels.

Its fixtures are imported by the test modules that use them; pytest builds an imported
session fixture once per module, so the training itself is cached here, once a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.local_server import LocalServer
from app.main import create_app
from tests.training.test_labelled_training import synthetic_csv
from tests.training.test_trainer import tiny
from training.trainer import train

Client = httpx.Client | TestClient
_built: dict[str, Path] = {}


def build_labelled_checkpoint(root: Path) -> Path:
    if "path" not in _built:
        corpus = synthetic_csv(root)
        out = root / "tiny-labelled"
        train(
            tiny(corpus, out, steps=150, eval_interval=50, batch_unit="packed", diagnostics=False)
        )
        _built["path"] = out
    return _built["path"]


@pytest.fixture(scope="session")
def labelled_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_labelled_checkpoint(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def labelled_client(labelled_checkpoint: Path) -> Iterator[TestClient]:
    settings = Settings(checkpoint=labelled_checkpoint, device="cpu", max_score_names=100)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
def labelled_server(labelled_checkpoint: Path) -> Iterator[str]:
    env = {"NAMEGEN_CHECKPOINT": str(labelled_checkpoint), "NAMEGEN_MAX_SCORE_NAMES": "100"}
    with LocalServer(env) as server:
        yield server.base


@pytest.fixture(params=["in_process", "uvicorn"])
def labelled_api(request: pytest.FixtureRequest) -> Iterator[Client]:
    """Each test runs against the in-process app and the real server."""
    if request.param == "in_process":
        yield request.getfixturevalue("labelled_client")
    else:
        with httpx.Client(base_url=request.getfixturevalue("labelled_server"), timeout=30) as c:
            yield c
