"""API keys and CORS, configured through settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.app.conftest import CHECKPOINT


@pytest.fixture(scope="module")
def locked() -> Iterator[TestClient]:
    settings = Settings(
        checkpoint=CHECKPOINT,
        device="cpu",
        api_keys=["k-one", "k-two"],
        cors_origins=["https://names.example"],
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_key_required_when_configured(locked: TestClient) -> None:
    r = locked.post("/generate", json={"n": 1})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert (
        locked.post("/score", json={"names": ["ann"]}, headers={"x-api-key": "nope"}).status_code
        == 401
    )
    assert locked.get("/model").status_code == 401


def test_any_configured_key_works_in_either_header(locked: TestClient) -> None:
    assert (
        locked.post("/generate", json={"n": 1}, headers={"x-api-key": "k-two"}).status_code == 200
    )
    bearer = {"authorization": "Bearer k-one"}
    assert locked.post("/score", json={"names": ["ann"]}, headers=bearer).status_code == 200


def test_probes_stay_open(locked: TestClient) -> None:
    assert locked.get("/health").status_code == 200
    assert locked.get("/ready").status_code == 200
    assert locked.get("/metrics").status_code == 200
    for page in ("/docs", "/redoc", "/docs/assets/swagger-ui.css", "/openapi.json"):
        assert locked.get(page).status_code == 200, page


def test_cors_allows_configured_origin_only(locked: TestClient) -> None:
    preflight = {"origin": "https://names.example", "access-control-request-method": "POST"}
    r = locked.options("/generate", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "https://names.example"
    other = locked.options("/generate", headers={**preflight, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_settings_read_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMEGEN_API_KEYS", "a, b")
    monkeypatch.setenv("NAMEGEN_CORS_ORIGINS", "https://x.example")
    settings = Settings()
    assert settings.api_keys == ["a", "b"] and settings.cors_origins == ["https://x.example"]


def test_no_key_configured_means_open(client: TestClient) -> None:
    assert client.post("/generate", json={"n": 1}).status_code == 200
    assert (
        "access-control-allow-origin"
        not in client.get("/health", headers={"origin": "https://names.example"}).headers
    )
