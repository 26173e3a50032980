"""Names that end a certain way: the backward network against rejection from the forward
one, and checks that the two networks agree, in one run.

- Endings of different rarity are picked from forward samples (temperature 1): the
  commonest last letter, a suffix near 1% and a rare suffix at or below 0.1%.
- For each, the time to get n = 100 and n = 1,000 names ending so: with `ends_with`
  (the backward network from the reversed ending, each name rescored by the forward
  network), and by rejection (forward samples in batches of 10,000 until n end so; with
  --quick capped at 100,000 samples and extrapolated, marked "~").
- Agreement: validation loss per character of both networks on the same split (the
  training corpus recomputed when it can be read, else the metrics in meta.json); and
  for ending "a", names from the backward network against forward samples kept by
  rejection: their length distributions and their mean forward log-probability.
- Over HTTP (a local server): 100 names of the rare ending, 10,000 ending in "a".

    python benchmarks/endings.py [--checkpoint DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # this folder's http.py would shadow the standard library's

import argparse
import math
import statistics
import time
from collections import Counter

import httpx
import torch

from app.local_server import LocalServer
from model.engine import Engine
from model.request import GenerateRequest
from model.sampling import sample
from model.wavenet import WaveNet

BATCH = 10_000  # forward samples a round of rejection
CORES = torch.get_num_threads()


def threads_for(rows: int) -> None:
    """torch threads as the server sets them (app/config.py's defaults): one for small
    batches, whose ops are too short to share out (on a busy machine two threads make
    them many times slower), one per core from 1,000 rows."""
    torch.set_num_threads(CORES if rows >= 1_000 else 1)


def forward_names(engine: Engine, count: int, seed: int) -> list[tuple[str, float]]:
    """`count` names from the forward network at temperature 1, with their logprobs."""
    threads_for(BATCH)
    out: list[tuple[str, float]] = []
    generator = torch.Generator().manual_seed(seed)
    while len(out) < count:
        ids, logprobs = sample(
            engine.net, min(BATCH, count - len(out)), GenerateRequest(), generator
        )
        out += [(engine.vocab.decode(row), lp) for row, lp in zip(ids, logprobs, strict=True)]
    return out


def rejection(
    engine: Engine, ending: str, share: float, n: int, cap: int, seed: int
) -> tuple[float, bool]:
    """Seconds to get n forward names ending so, drawing rounds of the size the ending's
    share calls for (at most BATCH); extrapolated past `cap` samples (True)."""
    generator = torch.Generator().manual_seed(seed)
    kept = drawn = 0
    started = time.perf_counter()
    while kept < n and drawn < cap:
        size = min(BATCH, max(100, math.ceil(1.2 * (n - kept) / share)))
        threads_for(size)
        ids, _ = sample(engine.net, size, GenerateRequest(), generator)
        drawn += size
        kept += sum(engine.vocab.decode(row).endswith(ending) for row in ids)
    seconds = time.perf_counter() - started
    if kept >= n:
        return seconds, False
    return seconds * n / max(kept, 1), True


def with_ending(engine: Engine, ending: str, n: int, repeats: int) -> float:
    """Seconds to get n names ending so from the backward network (best of `repeats`)."""
    best = float("inf")
    threads_for(n)
    for seed in range(repeats):
        started = time.perf_counter()
        result = engine.generate(GenerateRequest(n=n, seed=seed, ends_with=ending))
        best = min(best, time.perf_counter() - started)
        assert result.complete and all(g.name.endswith(ending) for g in result.names)
    return best


def pick_endings(names: list[str]) -> list[tuple[str, float]]:
    """The commonest last letter, the suffix nearest a 1% share and the commonest suffix
    at or below 0.1%, with their shares."""
    total = len(names)
    shares = {k: Counter(name[-k:] for name in names if len(name) >= k) for k in (1, 2, 3)}
    common = shares[1].most_common(1)[0]
    suffixes = [(s, c) for k in (2, 3) for s, c in shares[k].items()]
    middle = min(suffixes, key=lambda sc: abs(sc[1] / total - 0.01))
    rare = [(s, c) for s, c in suffixes if c <= total // 1000]
    if not rare:
        raise SystemExit(f"no suffix at or below 0.1% in {total} samples")
    picked = [common, middle, max(rare, key=lambda sc: (min(sc[1], 3), sc[1], sc[0]))]
    return [(s, c / total) for s, c in picked]


def validation_losses(engine: Engine) -> tuple[float, float, str]:
    """Both networks' validation loss per character on the same split."""
    from training.config import TrainConfig
    from training.data import evaluate, prepare_data

    meta = engine.checkpoint.meta
    try:
        cfg = TrainConfig.from_dict(meta["training"]["config"])
        losses = []
        for direction, model in (("forward", engine.model), ("backward", engine.backward)):
            cfg.direction = direction
            _, _, data = prepare_data(cfg, torch.device("cpu"))
            assert isinstance(model, WaveNet)
            losses.append(evaluate(model, data.val))
        return losses[0], losses[1], f"recomputed on {cfg.corpus}"
    except (OSError, ValueError, KeyError, TypeError) as e:
        val = meta["metrics"]["val_loss"], meta["backward"]["metrics"]["val_loss"]
        return val[0], val[1], f"from meta.json ({type(e).__name__}: {e})"


def lengths(names: list[str]) -> Counter[int]:
    return Counter(map(len, names))


def agreement(engine: Engine, count: int) -> str:
    """Ending "a": backward-sampled names against forward samples kept by rejection."""
    threads_for(count)
    backward = engine.generate(GenerateRequest(n=count, seed=7, ends_with="a")).names
    kept: list[tuple[str, float]] = []
    seed = 100
    while len(kept) < count:
        kept += [(s, lp) for s, lp in forward_names(engine, BATCH, seed) if s.endswith("a")]
        seed += 1
    kept = kept[:count]
    a, b = lengths([g.name for g in backward]), lengths([s for s, _ in kept])
    tv = 0.5 * sum(abs(a[k] - b[k]) for k in set(a) | set(b)) / count
    mean_len = (sum(k * c for k, c in a.items()) / count, sum(k * c for k, c in b.items()) / count)
    lps = [g.logprob for g in backward], [lp for _, lp in kept]
    mean_lp = [statistics.fmean(x) for x in lps]
    se = [statistics.stdev(x) / math.sqrt(count) for x in lps]
    return (
        f"agreement, ending 'a', {count} names each: mean length backward {mean_len[0]:.3f} "
        f"rejection {mean_len[1]:.3f} | length TV distance {tv:.4f} | mean forward logprob "
        f"backward {mean_lp[0]:.3f} +- {se[0]:.3f} rejection {mean_lp[1]:.3f} +- {se[1]:.3f}"
    )


def over_http(checkpoint: Path, rare: str) -> str:
    out = []
    with (
        LocalServer({"NAMEGEN_CHECKPOINT": str(checkpoint)}) as server,
        httpx.Client(base_url=server.base, timeout=60) as client,
    ):
        for ending, n in ((rare, 100), ("a", 10_000)):
            times = []
            for seed in range(3):
                started = time.perf_counter()
                r = client.post("/generate", json={"n": n, "seed": seed, "ends_with": ending})
                times.append(time.perf_counter() - started)
                names = r.json()["names"]
                assert r.status_code == 200 and all(g["name"].endswith(ending) for g in names)
            out.append(f"{ending}_n{n}_ms={1000 * min(times):.1f}")
    return "http: " + " ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    args = parser.parse_args()
    engine = Engine.load(args.checkpoint, "cpu")
    if engine.backward is None:
        raise SystemExit(f"{args.checkpoint} has no backward network (python -m training.combine)")
    samples, repeats, cap = (20_000, 3, 100_000) if args.quick else (200_000, 5, 10**8)
    print(f"checkpoint {args.checkpoint}, torch threads 1 below 1,000 rows, else {CORES}")
    started = time.perf_counter()
    names = [s for s, _ in forward_names(engine, samples, seed=0)]
    print(f"{samples} forward samples in {time.perf_counter() - started:.1f} s", flush=True)
    endings = pick_endings(names)
    rows = {}
    for ending, share in endings:
        line = [f"ending {ending!r}: share {share:.5f}"]
        for n in (100, 1000):
            ms = 1000 * with_ending(engine, ending, n, repeats)
            seconds, capped = rejection(engine, ending, share, n, cap, seed=n)
            rows[ending, n] = (ms, 1000 * seconds)
            mark = "~" if capped else ""
            line.append(
                f"n={n}: backward {ms:.1f} ms, rejection {mark}{1000 * seconds:.1f} ms "
                f"({1000 * seconds / ms:.1f}x)"
            )
        print(" | ".join(line), flush=True)
    threads_for(BATCH)
    val_forward, val_backward, where = validation_losses(engine)
    print(
        f"validation loss per character, same split ({where}): forward {val_forward:.4f} "
        f"backward {val_backward:.4f} (difference {val_backward - val_forward:+.4f})"
    )
    print(agreement(engine, 1000 if args.quick else 5000), flush=True)
    rare, share = endings[-1]
    print(over_http(args.checkpoint, rare), flush=True)
    rare_ms, rejection_ms = rows[rare, 100]
    print(
        f"endings: rare_suffix={rare} rare_share={share:.6f} rare_ms={rare_ms:.1f} "
        f"rejection_ms={rejection_ms:.1f} speedup={rejection_ms / rare_ms:.1f}x "
        f"val_forward={val_forward:.4f} val_backward={val_backward:.4f}"
    )


if __name__ == "__main__":
    main()
