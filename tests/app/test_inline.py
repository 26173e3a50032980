"""Tiny work that finds the inference thread idle runs on the event loop (no thread hop);
everything else, and tiny work while the thread is busy, goes to the thread. Either way a
seeded request gets the same names."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from model.sampling import Batch
from tests.app.conftest import CHECKPOINT


@pytest.fixture
def stepping_threads() -> Iterator[tuple[TestClient, list[tuple[str, int]]]]:
    """The app, and for each step since the warm-up: its thread's name and its rows."""
    seen: list[tuple[str, int]] = []
    real = Batch.step

    def spy(batch: Batch) -> list:  # type: ignore[type-arg]
        if len(batch):
            seen.append((threading.current_thread().name, len(batch)))
        return real(batch)

    settings = Settings(checkpoint=CHECKPOINT, device="cpu", max_n=10_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Batch, "step", spy)
        with TestClient(create_app(settings)) as client:
            seen.clear()
            yield client, seen


def test_a_lone_tiny_request_runs_on_the_loop_and_a_larger_one_on_the_thread(
    stepping_threads: tuple[TestClient, list[tuple[str, int]]],
) -> None:
    client, seen = stepping_threads
    before = time.monotonic()
    assert client.post("/generate", json={"n": 1, "seed": 3}).status_code == 200
    assert seen and all(name != "inference" for name, _ in seen)
    # the thread's admission learns that generate work goes on (scores share with it)
    assert client.app.state.service.worker.scheduler.generated_at >= before  # type: ignore[attr-defined]
    seen.clear()
    assert client.post("/generate", json={"n": 100, "seed": 3}).status_code == 200
    assert seen and all(name == "inference" for name, _ in seen)


def test_a_tiny_request_joins_the_thread_while_it_works_with_the_same_names(
    stepping_threads: tuple[TestClient, list[tuple[str, int]]],
) -> None:
    client, seen = stepping_threads
    alone = client.post("/generate", json={"n": 2, "seed": 11}).json()
    assert all(name != "inference" for name, _ in seen)
    heavy = threading.Thread(
        target=client.post, args=("/generate",), kwargs={"json": {"n": 10_000, "unique": True}}
    )
    heavy.start()
    try:
        while not seen or seen[-1][0] != "inference":  # the heavy request is stepping
            threading.Event().wait(0.005)
        seen.clear()
        merged = client.post("/generate", json={"n": 2, "seed": 11}).json()
        assert heavy.is_alive(), "the heavy request should still be running"
    finally:
        heavy.join()
    assert all(name == "inference" for name, _ in seen)
    assert merged["names"] == alone["names"]
