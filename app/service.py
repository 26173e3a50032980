"""The service behind the routes: the loaded model, its inference worker, settings and
metrics, started when the app starts (lifespan) and stopped when it stops."""

from __future__ import annotations

import gc
import logging
import sys
from dataclasses import dataclass

import torch

from app.batching import BatchingWorker
from app.config import Settings
from app.metrics import Metrics
from model.checkpoint import CheckpointError
from model.engine import Engine

log = logging.getLogger("namegen")
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # one per physical core, before we change it


@dataclass(frozen=True)
class Service:
    engine: Engine
    settings: Settings
    worker: BatchingWorker
    metrics: Metrics


def start_service(s: Settings, metrics: Metrics) -> Service:
    """Load the checkpoint, warm it up and start the worker (on the running event loop).
    Raises CheckpointError, logged, for a checkpoint that cannot be served."""
    threads = s.torch_threads or TORCH_DEFAULT_THREADS
    torch.set_num_threads(threads)
    sys.setswitchinterval(s.gil_switch_ms / 1000)
    try:
        engine = Engine.load(s.checkpoint, s.device)
    except CheckpointError as e:
        log.error("namegen: cannot start: %s", e)
        raise
    engine.budget_factor = s.budget_factor
    worker = BatchingWorker(
        engine,
        max_queue=s.max_queue,
        window_s=s.batch_window_ms / 1000,
        batching=s.batching,
        max_rows=s.max_active_rows,
        step_s=s.step_ms / 1000,
        lone_step_s=s.lone_step_ms / 1000,
        threads=threads,
        large_batch_threads=s.large_batch_threads or TORCH_DEFAULT_THREADS,
        large_batch_rows=s.large_batch_rows,
        admit_fraction=s.admit_fraction,
    )
    worker.warm_up()  # before taking traffic; measures the model's speed for admission
    worker.start()
    metrics.watch_queue(lambda: worker.depth)
    metrics.watch_speed(worker.scheduler)
    worker.on_step = metrics.batch_requests.observe
    # Everything loaded so far lives as long as the process: keep it out of the
    # collector's full passes, which would otherwise walk all of torch, pydantic and
    # FastAPI and stall the event loop for tens of milliseconds under load.
    gc.collect()
    gc.freeze()
    return Service(engine, s, worker, metrics)
