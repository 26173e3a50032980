"""This checkout's cached sampler against another checkout's, side by side.

benchmarks/sampling.py's `cached` sampler (n names a call, temperature 1) from each
repository, on the same checkpoint, in short runs of a process each, taking turns (which
goes first alternates), so that the machine's drift falls on both alike: a run of one
and a run of the other a minute apart can differ by 40% on a shared machine.

    git worktree add /tmp/base 780ea5d
    python benchmarks/sampling_compare.py --against /tmp/base [--checkpoint DIR]

Last line: `sampling_compare: n1=<ratio> n100=<ratio> n10000=<ratio>` (this checkout's
names/s over the other's, medians of each run's best: above 1 is faster).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import statistics
import subprocess

# Run in the repository measured: its own sampler and its own network class (which moved
# from model/sampling.py to model/incremental.py), one line out: names/s of the best rep.
CHILD = """
import sys, time, importlib.util
repo, checkpoint, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, repo)
import torch
torch.set_num_threads(threads)
from model.checkpoint import load_checkpoint
try:
    from model.incremental import IncrementalWaveNet
except ImportError:
    from model.sampling import IncrementalWaveNet
spec = importlib.util.spec_from_file_location("bench", repo + "/benchmarks/sampling.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench"] = bench
spec.loader.exec_module(bench)
net = IncrementalWaveNet(load_checkpoint(checkpoint).model.eval())
g = torch.Generator().manual_seed(0)
reps = max(3, 2000 // n)
for _ in range(2):
    bench.cached(net, n, g)
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    for _ in range(reps):
        bench.cached(net, n, g)
    best = min(best, (time.perf_counter() - started) / reps)
print(n / best)
"""


def names_per_s(repo: Path, checkpoint: Path, n: int, threads: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(repo), str(checkpoint), str(n), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "babynames-2017")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, per size")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    repos = {"this": REPO, "other": args.against.resolve()}
    ratios = {}
    for n in (1, 100, 10_000):
        seen: dict[str, list[float]] = {"this": [], "other": []}
        for turn in range(args.rounds):
            order = ["this", "other"] if turn % 2 == 0 else ["other", "this"]
            for side in order:
                seen[side].append(
                    names_per_s(repos[side], args.checkpoint.resolve(), n, args.threads)
                )
        this, other = statistics.median(seen["this"]), statistics.median(seen["other"])
        ratios[n] = this / other
        print(
            f"n={n:<6} this {this:9.0f} names/s | other {other:9.0f} names/s | "
            f"ratio {ratios[n]:.2f}",
            flush=True,
        )
    print(
        f"sampling_compare: n1={ratios[1]:.2f} n100={ratios[100]:.2f} n10000={ratios[10_000]:.2f}"
    )


if __name__ == "__main__":
    main()
