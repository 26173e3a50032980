"""Training under torchrun: 2 CPU processes (gloo) train, save a checkpoint that serves, and
without BatchNorm take the same steps as one process over the same global batches."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.engine import Engine
from model.request import GenerateRequest
from tests.conftest import REPO
from training.config import TrainConfig
from training.trainer import train

pytestmark = pytest.mark.slow

SMALL = ["--n-embd", "8", "--n-hidden", "32", "--batch-size", "32", "--threads", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess[str]:
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)),
        *("--master-addr", "127.0.0.1", "--master-port", str(free_port())),
        *("-m", "training", *SMALL, "--no-progress", *args),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def single(args: list[str]) -> None:
    command = [sys.executable, "-m", "training", *SMALL, "--no-progress", *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out).model.state_dict()


def test_two_ranks_train_a_checkpoint_that_serves(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    done = torchrun(["--corpus", str(small_corpus), "--out", str(out), "--steps", "40"])
    assert done.stdout.count('"checkpoint"') == 1  # only rank 0 reports
    assert not (out / "last").exists()
    meta = load_checkpoint(out).meta
    assert meta["metrics"]["steps"] == 40
    engine = Engine.load(out, device="cpu")
    result = engine.generate(GenerateRequest(n=5, seed=1))
    assert len(result.names) == 5 and all(g.name.isalpha() for g in result.names)


def test_two_ranks_equal_one_process_without_batchnorm(small_corpus: Path, tmp_path: Path) -> None:
    args = ["--corpus", str(small_corpus), "--no-batchnorm", "--steps", "8", "--eval-interval", "4"]
    single([*args, "--out", str(tmp_path / "one")])
    torchrun([*args, "--out", str(tmp_path / "two")])
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    # and a run interrupted in one process, resumed under torchrun, ends the same
    resumed = tmp_path / "resumed"
    cfg = TrainConfig.from_dict(load_checkpoint(tmp_path / "one").meta["training"]["config"])
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "out": str(resumed)})
    train(cfg, stop_after=4)
    assert (resumed / "last").exists()
    torchrun([*args, "--out", str(resumed), "--resume"])
    for key, value in weights(resumed).items():
        torch.testing.assert_close(value, one[key], rtol=1e-4, atol=1e-5, msg=key)


def rank_pid(parent: int, rank: int) -> int | None:
    """The pid of the worker of `rank` under the torchrun process `parent`."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = next(x for x in status.read_text().splitlines() if x.startswith("PPid:"))
            env = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration):
            continue
        if int(ppid.split()[1]) == parent and f"RANK={rank}".encode() in env:
            return int(status.parent.name)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank's process in /proc")
def test_a_killed_rank_stops_the_run_and_keeps_the_last_state(
    small_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
        *("--master-addr", "127.0.0.1", "--master-port", str(free_port())),
        *("-m", "training", *SMALL, "--no-progress", "--corpus", str(small_corpus)),
        *("--out", str(out), "--steps", "100000", "--eval-interval", "20"),
    ]
    run = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last" / "meta.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        pid = rank_pid(run.pid, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode != 0
    assert "rank 0: the run stopped because another rank failed" in err
    last = load_checkpoint(out / "last")
    assert last.meta["train_state"]["step"] % 20 == 0
