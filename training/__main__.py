"""`python -m training`: train a WaveNet on a corpus (one name per line, or a labelled CSV)
into a checkpoint."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from training import distributed
from training.cli import add_train_flags, config_from_args
from training.corpus import CorpusError
from training.trainer import train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a character-level WaveNet on a corpus of names (with a labelled "
        "CSV corpus, a WaveNet conditioned on its labels). Writes a checkpoint directory "
        "(safetensors + meta.json); OUT/last holds resumable state while the run is going.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_train_flags(parser)
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from OUT/last"
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="a short health check: 300 steps (unless --steps is given), diagnostics every "
        "10 steps, evaluation every 100; look at OUT/diagnostics/*.png afterwards",
    )
    return parser


def stopped(rank: int, why: str) -> None:
    """A rank's end when another rank failed: one line, exit 1 (saves are atomic, so
    OUT/last is the last evaluation's)."""
    print(
        f"error: rank {rank}: the run stopped because another rank failed ({why}); "
        "the last saved state is intact, continue with --resume",
        file=sys.stderr,
    )
    raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume = args.pop("resume")
    if args.pop("diagnose"):
        explicit_steps = any(
            a == "--steps" or a.startswith("--steps=") for a in (argv or sys.argv[1:])
        )
        args.update(diagnostics=True, diagnose_interval=10, eval_interval=100)
        if not explicit_steps:
            args["steps"] = 300
    ranks = distributed.from_env()  # set by torchrun; one process without it
    if ranks.active:  # torchrun ends the other ranks with SIGTERM when one fails
        signal.signal(signal.SIGTERM, lambda *_: stopped(ranks.rank, "SIGTERM from torchrun"))
    try:
        result = train(config_from_args(args), resume=resume)
    except (CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if not (ranks.active and distributed.lost_peer(e)):
            raise
        stopped(ranks.rank, str(e).strip().splitlines()[0] if str(e).strip() else repr(e))
    if ranks.main:
        print(json.dumps({"checkpoint": str(result.out), **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
