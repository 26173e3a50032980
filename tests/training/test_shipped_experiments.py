"""The shipped experiment files, their committed results and the README agree.

The results tables are written by `python -m training.sweep` (or `--record`), and the
README quotes them; these tests catch a row added to a TOML file but never run, a result
left behind by a row that was removed or renamed, an option the trainer no longer knows,
and a README table that drifted from the results it quotes. They also hold the committed
figures to the bars the README claims for them (issue 4).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from training.sweep import load_rows, read_results

EXPERIMENTS = REPO / "experiments"
RESULTS = EXPERIMENTS / "results"
FILES = sorted(EXPERIMENTS.glob("*.toml"))


def readme_table(stem: str) -> str:
    readme = (EXPERIMENTS / "README.md").read_text(encoding="utf-8")
    start, end = f"<!-- {stem}-table -->\n", f"<!-- /{stem}-table -->"
    assert start in readme, f"README has no {start.strip()} block"
    return readme.split(start, 1)[1].split(end, 1)[0]


def test_the_shipped_files_are_found() -> None:
    assert {p.stem for p in FILES} >= {"lecture", "beyond", "lstm", "screen"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_row_has_exactly_one_result_and_no_result_lacks_a_row(path: Path) -> None:
    rows = {row.name: row for row in load_rows(path)}  # also validates every option
    results = read_results(path.stem, RESULTS)
    assert sorted(r["name"] for r in results) == sorted(rows)
    for result in results:
        row = rows[result["name"]]
        assert result["model"] == row.options.get("model", "wavenet"), row.name
        assert result["notes"] == row.notes, row.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_results_are_ranked_and_the_readme_quotes_them(path: Path) -> None:
    results = read_results(path.stem, RESULTS)
    vals = [r["val"] for r in results]
    assert vals == sorted(vals)
    table = (RESULTS / f"{path.stem}.md").read_text(encoding="utf-8")
    assert readme_table(path.stem) == table


def test_lecture_rows_land_within_002_of_the_lecture() -> None:
    for r in read_results("lecture", RESULTS):
        assert r["reference_val"] != "", r["name"]
        assert abs(r["val"] - r["reference_val"]) <= 0.02, r["name"]


def test_beyond_has_one_lstm_reference_and_a_wavenet_that_meets_the_bar() -> None:
    rows = {row.name: row for row in load_rows(EXPERIMENTS / "beyond.toml")}
    results = read_results("beyond", RESULTS)
    lstm = [r for r in results if r["model"] == "lstm"]
    assert len(lstm) == 1, "beyond.toml holds exactly one recurrent reference row"
    reference = lstm[0]
    assert rows[reference["name"]].options["time_budget_s"] == 900

    best = min((r for r in results if r["model"] == "wavenet"), key=lambda r: r["val"])
    options = rows[best["name"]].options
    assert best["val"] <= 1.92
    assert best["params"] <= 1_000_000
    assert 0 < options["time_budget_s"] <= 15 * 60  # training stops within 15 minutes
    assert options["threads"] <= 2
    assert best["val"] <= reference["val"]
