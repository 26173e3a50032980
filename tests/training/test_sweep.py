"""The experiment harness: tables, plot, --only, --record, and resuming after a real kill."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model import WaveNetConfig
from model.lstm import LSTMConfig
from tests.conftest import REPO
from training.sweep import load_rows
from training.sweep import main as sweep_main

TINY = """
[defaults]
corpus = "{corpus}"
batch_size = 16
eval_interval = 10
threads = 1

[defaults.model]
n_embd = 8
n_hidden = 16

[[run]]
name = "fast"
notes = "finishes in a moment"
reference_val = 3.0
steps = 30

[[run]]
name = "slow-lstm"
steps = {slow_steps}

[run.model]
kind = "lstm"
n_layers = 1
"""


def sweep_file(tmp_path: Path, corpus: Path, slow_steps: int = 30) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(corpus=corpus, slow_steps=slow_steps))
    return path


def run(path: Path, tmp_path: Path, *extra: str) -> int:
    return sweep_main(
        [
            str(path),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--results-dir",
            str(tmp_path / "results"),
            *extra,
        ]
    )


def test_sweep_writes_ranked_tables_and_plot(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(sweep_file(tmp_path, small_corpus), tmp_path) == 0
    with open(tmp_path / "results" / "tiny.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["name"] for r in rows} == {"fast", "slow-lstm"}
    assert {r["model"] for r in rows} == {"wavenet", "lstm"}
    vals = [float(r["val"]) for r in rows]
    assert vals == sorted(vals)
    md = (tmp_path / "results" / "tiny.md").read_text()
    assert md.startswith("| name | model | params |") and "finishes in a moment" in md
    assert (tmp_path / "results" / "tiny.png").read_bytes()[:4] == b"\x89PNG"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    best = min(rows, key=lambda r: float(r["val"]))
    assert last.startswith(f"sweep: best={best['name']} params={best['params']} val=")
    assert " test=" in last and " seconds=" in last


def test_interrupted_sweep_resumes_without_redoing_finished_runs(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep_file(tmp_path, small_corpus, slow_steps=20_000)
    cmd = [
        sys.executable,
        "-m",
        "training.sweep",
        str(path),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--results-dir",
        str(tmp_path / "results"),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    slow = tmp_path / "runs" / "tiny" / "slow-lstm"
    deadline = time.monotonic() + 60
    while not (slow / "last" / "meta.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-run: the slow row has started, not finished
    proc.wait()
    fast_meta = tmp_path / "runs" / "tiny" / "fast" / "meta.json"
    finished_at = fast_meta.stat().st_mtime_ns

    path.write_text(TINY.format(corpus=small_corpus, slow_steps=20_000).replace("20000", "40"))
    assert run(path, tmp_path) == 0
    out = capsys.readouterr().out
    assert "fast: finished earlier, skipped" in out
    assert "slow-lstm: unfinished run found, restarting it" in out
    assert fast_meta.stat().st_mtime_ns == finished_at  # not trained again
    with open(tmp_path / "results" / "tiny.csv") as f:
        assert {r["name"] for r in csv.DictReader(f)} == {"fast", "slow-lstm"}


def test_only_trains_one_row_into_out(small_corpus: Path, tmp_path: Path) -> None:
    path = sweep_file(tmp_path, small_corpus)
    assert run(path, tmp_path, "--only", "fast", "--out", str(tmp_path / "one")) == 0
    assert (tmp_path / "one" / "meta.json").exists()
    assert not (tmp_path / "results").exists()


def test_record_adds_a_separately_trained_row_to_the_table(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep_file(tmp_path, small_corpus)
    assert run(path, tmp_path) == 0
    with open(tmp_path / "results" / "tiny.csv") as f:
        before = {r["name"]: r for r in csv.DictReader(f)}
    one = tmp_path / "one"
    assert run(path, tmp_path, "--only", "fast", "--out", str(one)) == 0
    (tmp_path / "runs").rename(tmp_path / "gone")  # the other rows' runs are not needed

    assert run(path, tmp_path, "--record", "fast", "--out", str(one)) == 0
    with open(tmp_path / "results" / "tiny.csv") as f:
        after = list(csv.DictReader(f))
    assert [r["name"] for r in after].count("fast") == 1  # replaced, not added twice
    assert {r["name"]: r for r in after}["slow-lstm"] == before["slow-lstm"]  # kept as it was
    vals = [float(r["val"]) for r in after]
    assert vals == sorted(vals)
    assert (
        f"{float(before['fast']['reference_val'])}"
        in (tmp_path / "results" / "tiny.md").read_text()
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    best = min(after, key=lambda r: float(r["val"]))
    assert last.startswith(f"sweep: best={best['name']} params={best['params']} val=")


def test_record_refuses_an_unfinished_run(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sweep_file(tmp_path, small_corpus)
    with pytest.raises(SystemExit) as exit_info:
        run(path, tmp_path, "--record", "fast", "--out", str(tmp_path / "nothing"))
    assert exit_info.value.code == 2
    assert "holds no finished run" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_bad_sweep_file_is_a_clear_error(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[[run]]\nname = "x"\ncorpus = "{small_corpus}"\nlearning_rate = 1\n')
    assert run(path, tmp_path) == 2
    assert "unknown options ['learning_rate']" in capsys.readouterr().err


def test_model_tables_nest_and_merge(small_corpus: Path, tmp_path: Path) -> None:
    rows = {r.name: r for r in load_rows(sweep_file(tmp_path, small_corpus))}
    fast, slow = rows["fast"].config(tmp_path), rows["slow-lstm"].config(tmp_path)
    assert fast.model == WaveNetConfig(n_embd=8, n_hidden=16)
    assert slow.model == LSTMConfig(n_embd=8, n_hidden=16, n_layers=1)
    assert rows["slow-lstm"].kind == "lstm"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("n_embd = 8", "unknown options ['n_embd']"),
        ('model = "lstm"', "model options go in a [run.model] table"),
        ('[run.model]\nkind = "lstm"\ngated = true', "gated"),
        ('[run.model]\nkind = "gru"', "model kind must be one of"),
    ],
)
def test_misplaced_model_options_are_clear_errors(
    small_corpus: Path, tmp_path: Path, row: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[[run]]\nname = "x"\ncorpus = "{small_corpus}"\n{row}\n')
    with pytest.raises(ValueError, match=re.escape(message)):
        load_rows(path)
