"""A checkpoint's files on disk: written atomically, read back only when their sha256 is
the one meta.json lists for them, and parsed as safetensors (never pickle)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_safetensors
from torch import Tensor

META = "meta.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted or does not match its description."""


def fsync_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temporary file in the same directory, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are read by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def entry_of(kind: str, ext: str, data: bytes) -> dict[str, str]:
    """A payload's listing in meta.json: a content-addressed file name and its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    return {"path": f"{kind}-{sha[:12]}{ext}", "sha256": sha}


def read_payload(path: Path, entry: dict[str, Any], what: str) -> bytes:
    """The bytes of the file `entry` lists, checked against its sha256; `what` names it in
    errors ("model file", "backward network file")."""
    file = path / entry["path"]
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path}: {what} {entry['path']} is missing")
    data: bytes = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path}: {what} {entry['path']} is truncated or corrupted "
            f"(sha256 does not match {META})"
        )
    return data


def load_tensors(path: Path, entry: dict[str, Any], what: str) -> dict[str, Tensor]:
    data = read_payload(path, entry, what)
    try:
        return load_safetensors(data)  # parses the safetensors format: no pickle
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(
            f"checkpoint {path}: {what} {entry['path']} is not valid safetensors: {e}"
        ) from e
