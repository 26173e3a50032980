"""The server refuses a broken checkpoint: one line saying why, a non-zero exit, no port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app.conftest import CHECKPOINT
from tests.conftest import REPO


def broken_copy(tmp_path: Path, how: str) -> Path:
    path = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINT, path)
    meta = json.loads((path / "meta.json").read_text())
    weights = path / meta["files"]["model"]["path"]
    if how == "missing":
        shutil.rmtree(path)
    elif how == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "flipped":
        data = bytearray(weights.read_bytes())
        for i in range(500, len(data), 4096):
            data[i] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif how == "incompatible":
        meta["model_config"]["n_hidden"] = 64
        (path / "meta.json").write_text(json.dumps(meta))
    return path


CASES = {
    "missing": "does not exist",
    "truncated": "truncated or corrupted",
    "flipped": "truncated or corrupted",
    "incompatible": "shape",
}


def launcher_refusal(checkpoint: Path) -> str:
    """The one line `python -m app` exits 1 with on a checkpoint it cannot serve."""
    env = {**os.environ, "NAMEGEN_CHECKPOINT": str(checkpoint)}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("namegen: cannot start:")
    return lines[0]


@pytest.mark.parametrize("how", list(CASES))
def test_launcher_refuses_broken_checkpoint(tmp_path: Path, how: str) -> None:
    assert CASES[how] in launcher_refusal(broken_copy(tmp_path, how))


def test_plain_uvicorn_also_exits_nonzero(tmp_path: Path) -> None:
    env = {**os.environ, "NAMEGEN_CHECKPOINT": str(broken_copy(tmp_path, "flipped"))}
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "namegen: cannot start:" in proc.stderr and "truncated or corrupted" in proc.stderr
