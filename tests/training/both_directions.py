"""Tiny checkpoints with both networks, trained in seconds on tests/training's synthetic
labelled corpus (girls' names end in 'a', boys' in 'o'; a decade's begin with its
letters): a forward and a backward run on the same corpus and split, combined.

Builders cache what they train for the session (under pytest's base temp directory), so
the model, training and app tests share one set of runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.test_labelled_training import synthetic_csv
from tests.training.test_trainer import tiny
from training.combine import write_combined
from training.trainer import train

_built: dict[str, Path] = {}


def corpus(root: Path) -> Path:
    if "corpus" not in _built:
        (root / "synthetic").mkdir(exist_ok=True)
        _built["corpus"] = synthetic_csv(root / "synthetic")
    return _built["corpus"]


def trained(root: Path, direction: str, steps: int = 150, **overrides: object) -> Path:
    """A run of `direction` on the synthetic corpus (cached by its options)."""
    key = f"{direction}-{steps}-" + "-".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    if key not in _built:
        out = root / "runs" / key
        options: dict[str, object] = dict(
            steps=steps, eval_interval=50, batch_unit="packed", diagnostics=False
        )
        options.update(overrides)
        train(tiny(corpus(root), out, direction=direction, **options))
        _built[key] = out
    return _built[key]


def both_directions(root: Path) -> Path:
    """The forward and backward runs combined into one checkpoint."""
    if "both" not in _built:
        out = root / "both"
        write_combined(
            trained(root, "forward"), trained(root, "backward"), out, force=False, command="test"
        )
        _built["both"] = out
    return _built["both"]


@pytest.fixture(scope="session")
def both_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return both_directions(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def forward_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.getbasetemp(), "forward")


@pytest.fixture(scope="session")
def backward_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.getbasetemp(), "backward")
