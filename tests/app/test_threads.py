"""Small batches run with few torch threads, large ones with more (settings)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from model.engine import Engine
from tests.app.conftest import CHECKPOINT


@pytest.fixture
def threads_seen() -> Iterator[tuple[TestClient, list[tuple[int, int]]]]:
    settings = Settings(
        checkpoint=CHECKPOINT,
        device="cpu",
        torch_threads=1,
        large_batch_threads=2,
        large_batch_rows=500,
    )
    seen: list[tuple[int, int]] = []  # (names in the batch, torch threads while it ran)
    real = Engine.generate_many

    def spy(engine: Engine, requests: list) -> list:  # type: ignore[type-arg]
        seen.append((sum(r.n for r in requests), torch.get_num_threads()))
        return real(engine, requests)

    with TestClient(create_app(settings)) as client:
        engine = client.app.state.service.engine  # type: ignore[attr-defined]
        engine.generate_many = spy.__get__(engine)
        yield client, seen


def test_thread_count_follows_batch_size(
    threads_seen: tuple[TestClient, list[tuple[int, int]]],
) -> None:
    client, seen = threads_seen
    assert client.post("/generate", json={"n": 3}).status_code == 200
    assert client.post("/generate", json={"n": 600}).status_code == 200
    assert seen == [(3, 1), (600, 2)]
