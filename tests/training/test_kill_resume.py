"""Training killed with SIGKILL mid-run resumes from its last checkpoint, losing nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def command(corpus: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "training",
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--n-embd",
        "8",
        "--n-hidden",
        "32",
        "--batch-size",
        "32",
        "--steps",
        "400",
        "--eval-interval",
        "20",
        "--threads",
        "1",
        "--no-progress",
    ]


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(
    small_corpus: Path, tmp_path: Path
) -> None:
    subprocess.run(
        command(small_corpus, tmp_path / "whole"), cwd=REPO, check=True, capture_output=True
    )

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        command(small_corpus, out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a few saves, then kill at a random point
        meta = out / "last" / "meta.json"
        if meta.exists() and '"step": 100' in meta.read_text(errors="ignore"):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # whatever the moment of the kill, both checkpoints load whole
    last = load_checkpoint(out / "last")
    assert last.meta["train_state"]["step"] >= 100
    load_checkpoint(out)

    subprocess.run(
        [*command(small_corpus, out), "--resume"], cwd=REPO, check=True, capture_output=True
    )
    whole, resumed = load_checkpoint(tmp_path / "whole"), load_checkpoint(out)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.meta["metrics"]["steps"] == 400
