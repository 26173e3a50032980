"""Paste the experiment tables (experiments/results/<stem>.md) into experiments/README.md
between `<!-- <stem>-table -->` markers, so the log always shows what the sweeps wrote."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    readme = REPO / "experiments" / "README.md"
    text = readme.read_text(encoding="utf-8")
    for table in sorted((REPO / "experiments" / "results").glob("*.md")):
        start, end = f"<!-- {table.stem}-table -->", f"<!-- /{table.stem}-table -->"
        if start in text:
            body = table.read_text(encoding="utf-8").strip()
            pattern = re.escape(start) + r".*?" + re.escape(end)
            block = f"{start}\n{body}\n{end}"
            text = re.sub(pattern, lambda _, block=block: block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
