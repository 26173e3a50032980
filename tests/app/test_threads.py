"""Small steps run with few torch threads, large ones with more (settings)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from model.sampling import Batch
from tests.app.conftest import CHECKPOINT


@pytest.fixture
def threads_seen() -> Iterator[tuple[TestClient, list[tuple[int, int]]]]:
    settings = Settings(
        checkpoint=CHECKPOINT,
        device="cpu",
        torch_threads=1,
        large_batch_threads=2,
        large_batch_rows=500,
        max_active_rows=512,
        step_ms=1000,  # steps as large as max_active_rows allows
    )
    seen: list[tuple[int, int]] = []  # (rows in a step, torch threads while it ran)
    real = Batch.step

    def spy(batch: Batch) -> list:  # type: ignore[type-arg]
        seen.append((len(batch), torch.get_num_threads()))
        return real(batch)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Batch, "step", spy)
        with TestClient(create_app(settings)) as client:
            seen.clear()  # the warm-up's
            yield client, seen


def test_thread_count_follows_batch_size(
    threads_seen: tuple[TestClient, list[tuple[int, int]]],
) -> None:
    client, seen = threads_seen
    assert client.post("/generate", json={"n": 3}).status_code == 200
    assert {threads for rows, threads in seen if rows} == {1}
    assert client.post("/generate", json={"n": 600}).status_code == 200
    assert (512, 2) in seen  # full steps of the large request
    assert all(threads == (2 if rows >= 500 else 1) for rows, threads in seen if rows)
