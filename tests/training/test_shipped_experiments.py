"""The shipped experiment files, their committed results and the research log agree.

The results tables are written by `python -m training.sweep` (or `--record`), and the
log (experiments/README.md) quotes them; these tests catch a row added to a TOML file but
never run, a result left behind by a row that was removed or renamed, an option the
trainer no longer knows, and a table that drifted from the results it quotes. Rows whose
options were later removed from the code live on in results/archived.*, each with the
commit that runs them. The tests also hold the committed figures to the bars the log
claims for them (issue 4).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO
from training.sweep import load_rows, read_results

EXPERIMENTS = REPO / "experiments"
RESULTS = EXPERIMENTS / "results"
FILES = sorted(EXPERIMENTS.glob("*.toml"))
ARCHIVED = "archived"
ARCHIVE_COMMIT = "780ea5d"  # the last commit with every removed option


def log_table(stem: str) -> str:
    log = EXPERIMENTS / "README.md"
    text = (log if log.exists() else REPO / "README.md").read_text(encoding="utf-8")
    start, end = f"<!-- {stem}-table -->\n", f"<!-- /{stem}-table -->"
    assert start in text, f"the research log has no {start.strip()} block"
    return text.split(start, 1)[1].split(end, 1)[0]


def test_the_shipped_files_are_found() -> None:
    assert {p.stem for p in FILES} >= {"lecture", "beyond", "lstm", "screen"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_row_runs_today_and_has_exactly_one_result(path: Path) -> None:
    rows = {row.name: row for row in load_rows(path)}  # parses against today's TrainConfig
    for row in rows.values():
        row.config(Path("unused"))
    results = read_results(path.stem, RESULTS)
    assert sorted(r["name"] for r in results) == sorted(rows)
    for result in results:
        row = rows[result["name"]]
        assert result["model"] == row.kind, row.name
        assert result["notes"] == row.notes, row.name


@pytest.mark.parametrize("stem", [p.stem for p in FILES] + [ARCHIVED])
def test_results_are_ranked_and_the_log_quotes_them(stem: str) -> None:
    results = read_results(stem, RESULTS)
    vals = [r["val"] for r in results]
    assert vals == sorted(vals)
    table = (RESULTS / f"{stem}.md").read_text(encoding="utf-8")
    assert log_table(stem) == table


def test_archived_rows_keep_their_results_and_the_commit_that_runs_them() -> None:
    archived = read_results(ARCHIVED, RESULTS)
    assert archived
    current = {(p.name, r.name) for p in FILES for r in load_rows(p)}
    for r in archived:
        assert r["commit"] == ARCHIVE_COMMIT, r["name"]
        assert r["removed_options"], r["name"]
        assert (r["file"], r["name"]) not in current, "a row is either runnable or archived"
        assert r["params"] > 0 and r["val"] > 0 and r["test"] > 0, r["name"]


def test_archived_rows_are_rows_of_the_archive_commit() -> None:
    """Each archived row is in its file at the commit named, so it can be rerun there."""
    try:
        files = {
            r["file"]: subprocess.run(
                ["git", "show", f"{ARCHIVE_COMMIT}:experiments/{r['file']}"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for r in read_results(ARCHIVED, RESULTS)
        }
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with {ARCHIVE_COMMIT} here")
    for r in read_results(ARCHIVED, RESULTS):
        runs = {run["name"]: run for run in tomllib.loads(files[r["file"]])["run"]}
        assert r["name"] in runs, r["name"]
        for option in r["removed_options"].split("; "):
            assert option.split("=")[0] in runs[r["name"]], (r["name"], option)


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
