"""The code's shape, as DEVELOPERS.md and issue 16 set it: files short enough to read in
one sitting, a small model config, and packages that import only downwards (`model/`
nothing of `training/` or `app/`, `training/` nothing of `app/`)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from model import WaveNetConfig

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "training", "app")
LONGEST = {"model/wavenet.py": 330}  # the one file allowed a little more
FORBIDDEN = {"model": ("training", "app"), "training": ("app",), "app": ()}


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_300_lines(package: str) -> None:
    for path in modules(package):
        name = path.relative_to(REPO).as_posix()
        lines = len(path.read_text().splitlines())
        assert lines <= LONGEST.get(name, 300), f"{name}: {lines} lines"


def test_the_model_config_is_small() -> None:
    assert len(dataclasses.fields(WaveNetConfig)) <= 12


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_downwards(package: str) -> None:
    for path in modules(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in FORBIDDEN[package], f"{path.relative_to(REPO)} imports {name}"
