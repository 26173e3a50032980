"""Shared fixtures: the reference corpus beside the repo and a small corpus cut from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def reference_corpus() -> Path:
    return Path(os.environ.get("NAMEGEN_REFERENCE_CORPUS", REPO.parent / "shared/data/names.txt"))


@pytest.fixture(scope="session")
def names_txt() -> Path:
    path = reference_corpus()
    if not path.is_file():
        pytest.skip(f"reference corpus not found at {path}")
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory, names_txt: Path) -> Path:
    """600 distinct names from names.txt: enough to train a few steps in a second."""
    names = list(dict.fromkeys(names_txt.read_text().split()))[:600]
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text("\n".join(names) + "\n")
    return path
