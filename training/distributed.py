"""Training under torchrun: one process a rank, DistributedDataParallel between them.

`torchrun --nproc-per-node N -m training ...` sets RANK, WORLD_SIZE and LOCAL_RANK; with
them the trainer joins a process group (gloo on CPU, NCCL on CUDA). Every rank draws the
same global batch from the shared seeded generator and trains on its slice, so N ranks
take the steps one process would take over the same batches. Only rank 0 evaluates and
writes checkpoints; the others get its validation loss, so stopping decisions agree.
Without those variables nothing here is used and training runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from training.data import Batch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Ranks()


def from_env() -> Ranks:
    """The ranks torchrun describes in the environment; one process when it does not."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return SINGLE
    world = int(os.environ["WORLD_SIZE"])
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    return Ranks(rank, world, local)


def start(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group (torchrun's rendezvous via env://); the device this rank
    trains on: its own GPU by LOCAL_RANK on CUDA."""
    if not ranks.active:
        return device
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
        device = torch.device("cuda", ranks.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop(ranks: Ranks) -> None:
    if ranks.active and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, ranks: Ranks) -> nn.parallel.DistributedDataParallel:
    """The model in DDP (gradients averaged in buckets during backward). Buffers are not
    broadcast from rank 0 at each forward: each rank keeps BatchNorm statistics of its own
    slices, and `average_buffers` merges them before evaluating or saving."""
    device_ids = [ranks.local_rank] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, forward_sync_buffers=False
    )


def shard(batch: Batch, ranks: Ranks) -> tuple[Batch, float]:
    """This rank's contiguous slice of the global batch's rows, and the factor its mean
    loss is scaled by so that DDP's average of the ranks' gradients equals the gradient
    of the global batch's mean loss (slices hold different numbers of targets)."""
    rows = batch.x.shape[0]
    lo, hi = rows * ranks.rank // ranks.world, rows * (ranks.rank + 1) // ranks.world
    x, y, offsets, labels = batch
    part = Batch(
        x[lo:hi],
        y[lo:hi],
        offsets[lo:hi] if offsets is not None else None,
        labels[lo:hi] if labels is not None else None,
    )
    total = int((batch.y >= 0).sum())
    mine = int((part.y >= 0).sum())
    return part, mine * ranks.world / max(total, 1)


@torch.no_grad()
def average_buffers(model: nn.Module, ranks: Ranks) -> None:
    """BatchNorm's running statistics averaged over the ranks (SyncBatchNorm does not run
    on CPU); the mean of the running variances, which leaves out the spread of the ranks'
    means, a small difference when every rank sees batches of the same distribution."""
    if not ranks.active:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(ranks.world)


def share(value: float, ranks: Ranks, device: torch.device) -> float:
    """Rank 0's `value` on every rank."""
    if not ranks.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def lost_peer(error: BaseException) -> bool:
    """Whether `error` is a collective failing because another rank is gone."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError)
        and any(w in str(error).lower() for w in ("gloo", "nccl", "connection", "peer", "closed"))
    )
