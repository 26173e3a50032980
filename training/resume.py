"""Resumable state: what `OUT/last` holds so an interrupted run continues exactly.

Weights, optimizer moments, the weight average and every random stream go into a
safetensors payload; the loop's counters and the loss history into meta.json
("train_state"). A run resumed from them takes the same steps on the same batches as
one never interrupted, and ends with the same weights.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from model import Vocab
from model.checkpoint import load_checkpoint, load_train_state, save_checkpoint
from model.labels import LabelSpace
from model.registry import LanguageModel
from training.averaging import WeightAverage
from training.config import TrainConfig

LAST = "last"  # OUT/last: the latest state while a run is going


@dataclass
class Progress:
    """The loop's counters: where the run is and the best it has seen."""

    step: int = 0
    best_val: float = math.inf
    best_step: int = -1
    stale_evals: int = 0  # evaluations since the best
    elapsed: float = 0.0  # seconds of training at the last save
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per evaluation
    main_done: bool = False  # the main phase is over (only distillation, if any, is left)

    def evaluated(self, val: float, train_loss: float, elapsed: float) -> str:
        """Note an evaluation at the current step; returns its log line."""
        self.elapsed = elapsed
        entry = {"step": self.step, "train_loss": train_loss, "val_loss": val}
        self.history.append({**entry, "elapsed_s": round(elapsed, 2)})
        if val < self.best_val:
            self.best_val, self.best_step, self.stale_evals = val, self.step, 0
        else:
            self.stale_evals += 1
        return (
            f"step {self.step:>7} | train {train_loss:.4f} | val {val:.4f} | "
            f"best {self.best_val:.4f} @ {self.best_step} | {elapsed:.1f}s"
        )


@dataclass
class TrainState:
    model: LanguageModel
    optimizer: torch.optim.Optimizer
    batch_rng: torch.Generator  # the batches' own stream
    average: WeightAverage | None
    progress: Progress = field(default_factory=Progress)
    ddp: DistributedDataParallel | None = (
        None  # the model in DistributedDataParallel, under torchrun
    )


def pack_train_state(
    optimizer: torch.optim.Optimizer, batch_rng: torch.Generator
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Optimizer and RNG state as flat tensors (safetensors) plus JSON scalars."""
    sd = optimizer.state_dict()
    tensors = {
        f"optim.{pid}.{key}": torch.as_tensor(value)
        for pid, state in sd["state"].items()
        for key, value in state.items()
        if value is not None
    }
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.batches"] = batch_rng.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    scalars = {"param_groups": sd["param_groups"], "python_random": random.getstate()}
    return tensors, scalars


def unpack_train_state(
    tensors: dict[str, Tensor],
    scalars: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    batch_rng: torch.Generator,
) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    batch_rng.set_state(tensors["rng.batches"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    version, internal, gauss = scalars["python_random"]
    random.setstate((version, tuple(internal), gauss))


def save_last(
    out: Path,
    state: TrainState,
    cfg: TrainConfig,
    record: dict[str, Any],
    vocab: Vocab,
    corpus_names: Sequence[str],
    labels: LabelSpace | None = None,
) -> None:
    """Write OUT/last: the model as it is now, and everything needed to go on from it."""
    tensors, scalars = pack_train_state(state.optimizer, state.batch_rng)
    if state.average is not None:
        tensors.update(state.average.state())
    scalars.update(config=cfg.to_dict(), **asdict(state.progress))
    meta = {**record, "train_state": scalars}
    save_checkpoint(
        out / LAST,
        state.model,
        vocab,
        meta=meta,
        corpus_names=corpus_names,
        train_state=tensors,
        labels=labels,
    )


def restore(out: Path, state: TrainState, cfg: TrainConfig) -> bool:
    """Load OUT/last into `state`, if there is one; False when there is none. A state
    written with other training options is a ValueError."""
    if not (out / LAST / "meta.json").exists():
        return False
    last = load_checkpoint(out / LAST, device=next(state.model.parameters()).device)
    saved = dict(last.meta["train_state"])
    try:
        same = TrainConfig.from_dict(saved.pop("config")) == cfg
    except (TypeError, ValueError):  # options this code no longer has
        same = False
    if not same:
        raise ValueError(f"{out / LAST} was written with other training options; cannot resume")
    state.model.load_state_dict(last.model.state_dict())
    tensors = load_train_state(out / LAST)
    unpack_train_state(tensors, saved, state.optimizer, state.batch_rng)
    if state.average is not None:
        state.average.load_state(tensors)
    names = {f.name for f in fields(Progress)}
    state.progress = Progress(**{k: v for k, v in saved.items() if k in names})
    return True
