"""Do generated names carry the labels asked for? On the shipped (or given) conditional
checkpoint, in one run:

- sex: n names for F and n for M (seeded, labels {"sex": S}); the model's own posterior
  (what POST /infer answers) and, for the names that are in the corpus, the corpus's
  majority sex by births: the share of names whose label agrees with the one asked;
- decades: n names for each of two decades far apart (1920s and 2010s by default); of the
  generated names that are in the corpus, the share that were given in the asked decade
  (the corpus has births of the name in that decade), and the share the model's
  posterior puts closer to the asked decade than to the other.

    python benchmarks/labels.py [--checkpoint DIR] [--n N] [--decades 1920 2010]
                                [--guidance W]   (the request's; its default when not given)

Last line: `labels: sex_infer=<f> sex_corpus=<f> decade_corpus=<f> decade_infer=<f>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import csv
import gzip
from collections import defaultdict

from model.engine import Engine
from model.posterior import infer_labels
from model.request import GenerateRequest

CORPUS = REPO / "data" / "babynames.csv.gz"


def read_corpus(path: Path) -> tuple[dict[str, dict[str, int]], dict[str, set[str]]]:
    """Births by sex, and the decades given, of each name."""
    births: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    decades: dict[str, set[str]] = defaultdict(set)
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            births[row["name"]][row["sex"]] += int(row["count"])
            decades[row["name"]].add(row["decade"])
    return births, decades


def names_for(
    engine: Engine, n: int, labels: dict[str, str], seed: int, guidance: float | None
) -> list[str]:
    more = {} if guidance is None else {"guidance": guidance}
    result = engine.generate(GenerateRequest(n=n, seed=seed, labels=labels, **more))
    return [g.name for g in result.names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--n", type=int, default=1000, help="names per label asked")
    parser.add_argument("--decades", nargs=2, default=["1920", "2010"])
    parser.add_argument("--guidance", type=float, help="classifier-free guidance weight")
    args = parser.parse_args()
    engine = Engine.load(args.checkpoint, "cpu")
    space = engine.checkpoint.labels
    if space is None:
        raise SystemExit("labels: the checkpoint has no labels")
    births, given = read_corpus(args.corpus)

    agree_infer = agree_corpus = in_corpus = total = 0
    for seed, sex in enumerate(("F", "M")):
        names = names_for(engine, args.n, {"sex": sex}, seed, args.guidance)
        posts = infer_labels(engine.model, engine.vocab, space, names)
        hits = sum(p.columns["sex"].best == sex for p in posts)
        known = [name for name in names if name in births]
        corpus_hits = sum(max(births[name], key=births[name].__getitem__) == sex for name in known)
        print(
            f"sex {sex}: {len(names)} names, /infer agrees {hits / len(names):.3f}; "
            f"{len(known)} in the corpus, majority sex agrees {corpus_hits / len(known):.3f}",
            flush=True,
        )
        agree_infer, agree_corpus = agree_infer + hits, agree_corpus + corpus_hits
        total, in_corpus = total + len(names), in_corpus + len(known)

    a, b = args.decades
    decade_corpus = decade_infer = decade_known = decade_total = 0
    for seed, (asked, other) in enumerate(((a, b), (b, a)), start=2):
        names = names_for(engine, args.n, {"decade": asked}, seed, args.guidance)
        posts = infer_labels(engine.model, engine.vocab, space, names)
        closer = sum(
            p.columns["decade"].probs[asked] > p.columns["decade"].probs[other] for p in posts
        )
        known = [name for name in names if name in given]
        hits = sum(asked in given[name] for name in known)
        print(
            f"decade {asked}s: {len(names)} names, {len(known)} in the corpus, given in the "
            f"{asked}s {hits / len(known):.3f}; /infer favours {asked}s over {other}s "
            f"{closer / len(names):.3f}",
            flush=True,
        )
        decade_corpus, decade_infer = decade_corpus + hits, decade_infer + closer
        decade_known, decade_total = decade_known + len(known), decade_total + len(names)
    print(
        f"labels: sex_infer={agree_infer / total:.4f} sex_corpus={agree_corpus / in_corpus:.4f} "
        f"decade_corpus={decade_corpus / decade_known:.4f} "
        f"decade_infer={decade_infer / decade_total:.4f}"
    )


if __name__ == "__main__":
    main()
