"""`python -m training.sweep FILE`: train the named runs of a TOML file, one after another.

The file has optional `[defaults]` (any training option) and `[[run]]` tables, each with a
`name`, optional `notes` and `reference_val` (a published figure to compare with), and
training options overriding the defaults. Model options go in their own tables,
`[defaults.model]` and `[run.model]` (with `kind = "wavenet"` or `"lstm"`; the run's keys
override the defaults'). Relative paths are resolved against the TOML file's folder.

Each run trains into `RUNS/<file stem>/<name>/` (a checkpoint directory). A run whose
checkpoint holds final metrics is finished and skipped; a run found half-done (the sweep
was interrupted) is removed and restarted from scratch. After every run the results table
is rewritten, ranked by val loss: `RESULTS/<stem>.md` and `.csv`, and the validation curves
of all runs on one plot, `RESULTS/<stem>.png`.

`--only NAME --out DIR` trains that one row from scratch into DIR and touches no table.
`--record NAME --out DIR` adds the finished run in DIR to the tables as row NAME (replacing
a row of that name; the plot, drawn from the runs' histories, is left as it is): a row
trained on its own, or on another machine, joins the table without rerunning the rest.
The last line reads `sweep: best=<name> params=<int> val=<float> test=<float>
seconds=<float>` over the file's finished rows.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from model.checkpoint import CheckpointError, read_meta
from training import plots
from training.config import TrainConfig
from training.trainer import train

ROW_KEYS = {"name", "notes", "reference_val"}
COLUMNS = [
    "name",
    "model",
    "params",
    "train",
    "val",
    "test",
    "steps",
    "seconds",
    "reference_val",
    "notes",
]


@dataclass
class Row:
    name: str
    notes: str
    reference_val: float | None
    options: dict[str, Any]  # TrainConfig.from_dict's, except out

    @property
    def kind(self) -> str:
        return str(self.options.get("model", {}).get("kind", "wavenet"))

    def config(self, out: Path) -> TrainConfig:
        return TrainConfig.from_dict({**self.options, "out": str(out)})


def load_rows(path: Path) -> list[Row]:
    """Parse and validate a sweep file: every option must be a training option."""
    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown_top = set(spec) - {"defaults", "run"}
    if unknown_top:
        raise ValueError(f"{path}: unknown tables {sorted(unknown_top)} (use [defaults], [[run]])")
    known = {f.name for f in fields(TrainConfig)} - {"out"}
    defaults = dict(spec.get("defaults", {}))
    rows, names = [], set()
    for i, raw in enumerate(spec.get("run", [])):
        entry = {**defaults, **raw}
        name = entry.get("name")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{path}: run {i} needs a name of letters, digits, - and _")
        if name in names:
            raise ValueError(f"{path}: run name {name!r} appears twice")
        names.add(name)
        options = {k: v for k, v in entry.items() if k not in ROW_KEYS}
        tables = [defaults.get("model", {}), raw.get("model", {})]
        if not all(isinstance(t, dict) for t in tables):
            raise ValueError(f"{path}: run {name!r}: model options go in a [run.model] table")
        model = {**tables[0], **tables[1]}
        if model:
            options["model"] = model
        bad = set(options) - known
        if bad:
            raise ValueError(f"{path}: run {name!r} has unknown options {sorted(bad)}")
        if "corpus" not in options:
            raise ValueError(f"{path}: run {name!r} has no corpus")
        options["corpus"] = str((path.parent / options["corpus"]).resolve())
        options.setdefault("progress", False)
        try:  # validate now, not an hour into the sweep
            TrainConfig.from_dict({**options, "out": ""})
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: run {name!r}: {e}") from e
        rows.append(Row(name, entry.get("notes", ""), entry.get("reference_val"), options))
    if not rows:
        raise ValueError(f"{path}: no [[run]] tables")
    return rows


def finished_metrics(out: Path) -> dict[str, Any] | None:
    """The final metrics of a finished run, or None."""
    try:
        meta = read_meta(out)
    except CheckpointError:
        return None
    metrics = meta.get("metrics", {})
    return meta if "test_loss" in metrics and not metrics.get("partial") else None


def result_row(row: Row, meta: dict[str, Any]) -> dict[str, Any]:
    m = meta["metrics"]
    return {
        "name": row.name,
        "model": meta.get("model_kind", "wavenet"),
        "params": m["num_params"],
        "train": round(m["train_loss"], 4),
        "val": round(m["val_loss"], 4),
        "test": round(m["test_loss"], 4),
        "steps": m["steps"],
        "seconds": round(m["wall_time_s"], 1),
        "reference_val": "" if row.reference_val is None else row.reference_val,
        "notes": row.notes,
    }


def read_results(stem: str, results_dir: Path) -> list[dict[str, Any]]:
    """The rows of a results table written by `write_tables` (none if there is none)."""
    path = results_dir / f"{stem}.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for column in ("params", "steps"):
            r[column] = int(r[column])
        for column in ("train", "val", "test", "seconds"):
            r[column] = float(r[column])
        r["reference_val"] = float(r["reference_val"]) if r["reference_val"] else ""
    return rows


def write_tables(stem: str, results: list[dict[str, Any]], results_dir: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    ranked = sorted(results, key=lambda r: r["val"])
    with open(results_dir / f"{stem}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(ranked)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in ranked:
        cells = [f"{r[c]:,}" if c == "params" else str(r[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    (results_dir / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_results(
    stem: str, results: list[dict[str, Any]], histories: dict[str, Any], results_dir: Path
) -> None:
    write_tables(stem, results, results_dir)
    plots.plot_val_curves(histories, results_dir / f"{stem}.png", title=stem)


def run_sweep(path: Path, runs_dir: Path, results_dir: Path) -> list[dict[str, Any]]:
    rows = load_rows(path)
    stem = path.stem
    results, histories = [], {}
    for row in rows:
        out = runs_dir / stem / row.name
        meta = finished_metrics(out)
        if meta is None:
            if out.exists():
                print(f"sweep: {row.name}: unfinished run found, restarting it", flush=True)
                shutil.rmtree(out)
            print(f"sweep: {row.name}: training into {out}", flush=True)
            train(row.config(out))
            meta = finished_metrics(out)
            assert meta is not None
        else:
            print(f"sweep: {row.name}: finished earlier, skipped", flush=True)
        results.append(result_row(row, meta))
        histories[row.name] = meta.get("history", [])
        write_results(stem, results, histories, results_dir)
    return results


def summary_line(results: list[dict[str, Any]]) -> str:
    best = min(results, key=lambda r: r["val"])
    return (
        f"sweep: best={best['name']} params={best['params']} val={best['val']:.4f} "
        f"test={best['test']:.4f} seconds={best['seconds']:.1f}"
    )


def find_row(parser: argparse.ArgumentParser, path: Path, name: str) -> Row:
    rows = {r.name: r for r in load_rows(path)}
    if name not in rows:
        parser.error(f"no run named {name!r} in {path}")
    return rows[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.sweep", description=__doc__)
    parser.add_argument("file", type=Path, help="TOML file of named runs")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        help="where run checkpoints go (RUNS/<stem>/<name>)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path("experiments/results"),
        help="where the tables and the plot go",
    )
    parser.add_argument("--only", help="train only this row, from scratch, into --out")
    parser.add_argument(
        "--record", help="add the finished run in --out to the tables as this row; no training"
    )
    parser.add_argument("--out", type=Path, help="checkpoint directory for --only or --record")
    args = parser.parse_args(argv)
    try:
        if args.only and args.record:
            parser.error("give --only or --record, not both")
        if (args.only or args.record) and args.out is None:
            parser.error(f"--{'only' if args.only else 'record'} needs --out")
        if args.record:
            row = find_row(parser, args.file, args.record)
            meta = finished_metrics(args.out)
            if meta is None:
                parser.error(f"{args.out} holds no finished run")
            kept = [
                r for r in read_results(args.file.stem, args.results_dir) if r["name"] != row.name
            ]
            results = [*kept, result_row(row, meta)]
            write_tables(args.file.stem, results, args.results_dir)
        elif args.only:
            row = find_row(parser, args.file, args.only)
            shutil.rmtree(args.out, ignore_errors=True)
            train(row.config(args.out))
            meta = finished_metrics(args.out)
            assert meta is not None
            results = [result_row(row, meta)]
        else:
            results = run_sweep(args.file, args.runs_dir, args.results_dir)
    except (ValueError, OSError, tomllib.TOMLDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary_line(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
