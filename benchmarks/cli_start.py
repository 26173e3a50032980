"""How fast `namegen generate -n 5` answers: run alone (it loads torch and the checkpoint)
against answered by the warm keeper the previous command left (app/keeper.py), in
alternating runs of the real command, and `import torch` alone for reference.

    python benchmarks/cli_start.py [--rounds N] [--checkpoint DIR]

Last line: `cli: cold_s=<median> warm_s=<median> import_torch_s=<median> speedup=<x>x`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    args = parser.parse_args()
    script = Path(sys.executable).parent / "namegen"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    command += ["generate", "-n", "5", "--checkpoint", str(args.checkpoint)]
    with tempfile.TemporaryDirectory() as folder:
        warm = {**os.environ, "NAMEGEN_CLI_KEEP_DIR": folder, "NAMEGEN_CLI_KEEP_S": "120"}
        cold = {**warm, "NAMEGEN_CLI_KEEP_S": "0"}
        timed(command, warm)  # leaves the keeper; wait until it answers
        deadline = time.monotonic() + 60
        while not list(Path(folder).glob("*.pid")) and time.monotonic() < deadline:
            time.sleep(0.1)
        timed(command, warm)
        colds, warms, torches = [], [], []
        for _ in range(args.rounds):
            colds.append(timed(command, cold))
            warms.append(timed(command, warm))
            torches.append(timed([sys.executable, "-c", "import torch"], cold))
            print(f"cold {colds[-1]:.3f} s  warm {warms[-1]:.3f} s  torch {torches[-1]:.3f} s")
        for pid_file in Path(folder).glob("*.pid"):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    c, w, t = (statistics.median(x) for x in (colds, warms, torches))
    print(f"cli: cold_s={c:.3f} warm_s={w:.3f} import_torch_s={t:.3f} speedup={c / w:.1f}x")


if __name__ == "__main__":
    main()
