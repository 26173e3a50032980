"""Training throughput in one process and under torchrun with 2 processes (DDP, gloo on CPU).

    .venv/bin/python benchmarks/train_ddp.py --corpus ../shared/data/names.txt --seconds 30

Each run trains the default WaveNet for `--seconds` (a time budget, so both runs get the
same wall time) and reports optimizer steps per second and names per second; a step
takes the same global batch in both, split between the ranks under torchrun. Each rank
gets `--threads` torch threads, so 2 processes use twice the cores of one.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(nproc: int, args: argparse.Namespace, out: Path) -> dict[str, float]:
    launcher = [sys.executable, "-m", "training"]
    if nproc > 1:
        launcher = [
            *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc)),
            *("--master-addr", "127.0.0.1", "--master-port", str(free_port())),
            *("-m", "training"),
        ]
    flags = [
        *("--corpus", str(args.corpus), "--out", str(out), "--no-progress"),
        *("--batch-size", str(args.batch_size), "--threads", str(args.threads)),
        *("--steps", "1000000", "--eval-interval", "1000000"),
        *("--time-budget-s", str(args.seconds)),
    ]
    done = subprocess.run(
        [*launcher, *flags], cwd=REPO, capture_output=True, text=True, timeout=args.seconds * 4
    )
    if done.returncode != 0:
        raise SystemExit(f"{nproc} process(es) failed:\n{done.stderr[-2000:]}")
    metrics = json.loads(done.stdout[done.stdout.index("{") :])
    steps, seconds = metrics["steps"], metrics["wall_time_s"]
    return {
        "processes": nproc,
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": round(steps / seconds, 1),
        "names_per_s": round(steps * args.batch_size / seconds),
        "val_loss": round(metrics["val_loss"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared/data/names.txt")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            print(json.dumps(run(nproc, args, Path(tmp) / f"run{nproc}")), flush=True)


if __name__ == "__main__":
    main()
