"""Service settings, from environment variables prefixed NAMEGEN_ (or a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NAMEGEN_", env_file=".env", extra="ignore")

    checkpoint: Path = Field(REPO / "checkpoints" / "default", description="checkpoint directory")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # One for small batches: concurrent requests are merged into batches, so parallelism
    # comes from batching and replicas, and idle intra-op threads spin on the cores the
    # event loop needs (64 clients on 2 cores: 1,559 requests/s with 1, 1,354 with 2).
    # Large batches get more (10,000 names: 233 ms with 2 threads, 356 ms with 1).
    torch_threads: int = Field(
        1, ge=0, description="torch CPU threads for small batches; 0: one per core"
    )
    large_batch_threads: int = Field(
        0, ge=0, description="torch CPU threads for large batches; 0: one per core"
    )
    large_batch_rows: int = Field(
        1_000, ge=1, description="batches of at least this many names count as large"
    )
    # Python hands the GIL between threads every 5 ms by default: the event loop and the
    # inference thread take turns, and each turn can wait that long. benchmarks/fairness.py
    # on 2 cores: light p99 95-100 ms and 86-107 heavy names/s at 0.1 ms, 105-122 ms and
    # 71-75 names/s at 0.5 ms.
    gil_switch_ms: float = Field(
        0.1, gt=0, le=100, description="how often the interpreter may switch threads (ms)"
    )
    max_n: int = Field(10_000, ge=1, description="most names one /generate may ask for")
    max_length_limit: int = Field(64, ge=1, description="largest max_length /generate accepts")
    max_score_names: int = Field(1_000, ge=1, description="most names one /score may send")
    max_name_chars: int = Field(64, ge=1, description="longest name /score accepts")
    max_body_bytes: int = Field(1_000_000, ge=1_024, description="request bodies above get 413")
    budget_factor: int = Field(
        20, ge=1, description="filters may sample up to this many times n before giving up"
    )
    batching: bool = Field(
        True, description="serve concurrent requests together (false: one at a time, in order)"
    )
    # Every step of the model advances the rows of every request admitted, so the time
    # of a step sets how long a one-name request takes among large ones (about 8 steps,
    # 17 at most): steps run as many rows as fit in step_ms at the speed measured.
    step_ms: float = Field(
        4.0,
        gt=0,
        le=1_000,
        description="time one step of the model aims at (names beyond wait for the next)",
    )
    # A request served alone takes longer steps: fewer of them, each cheaper per name
    # (10,000 names: about twice as fast as in 4 ms steps), and when another arrives its
    # names beyond the shorter steps' room pause until there is room again.
    lone_step_ms: float = Field(
        50.0,
        gt=0,
        le=1_000,
        description="time one step aims at while a single request is served",
    )
    max_active_rows: int = Field(
        4_096, ge=64, description="names one step of the model works on at most"
    )
    # 0 by default: requests that queue while the model is busy are merged anyway, and a
    # lone request waiting even 1 ms costs it about 2 ms (timer granularity)
    batch_window_ms: float = Field(
        0.0, ge=0, le=1_000, description="how long a lone request waits for others to join it"
    )
    max_queue: int = Field(256, ge=1, description="requests admitted at once; more get 429")
    request_timeout_s: float = Field(
        30.0,
        gt=0,
        description="time limit of a request: work that would not be done by then gets 429 "
        "at once; a /generate that runs out of it returns what it found (stopped: time), "
        "a /score answers late, up to twice the limit",
    )
    # Above 1 it overbooks: more is admitted than can be served in time, and /generate
    # requests that run out of time return what they found.
    admit_fraction: float = Field(
        0.7,
        gt=0,
        le=10,
        description="admit work expected to take up to this share of the time limit, "
        "with the work already admitted",
    )
    # Limits at the connection (app/connections.py), before any request is routed.
    max_header_bytes: int = Field(
        16_384,
        ge=1_024,
        description="request line and headers above this size: 431, connection closed",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="time to receive a request's line and headers, from the connection's "
        "opening (or the request's first byte): then 408, connection closed",
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="time to receive a request's body after its headers"
    )
    keep_alive_s: int = Field(
        5, ge=1, description="an idle keep-alive connection is closed after this (seconds)"
    )
    max_connections: int = Field(
        1_000, ge=1, description="open connections beyond this are closed as they open"
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated keys; when set, /generate, /score and /model need one "
        "in the X-API-Key header (or Authorization: Bearer)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS"
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
