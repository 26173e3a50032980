"""Checkpoints: a directory of safetensors payloads plus `meta.json`, no pickle anywhere.

Layout of a checkpoint directory:
    meta.json                      config, vocab, training record, metrics, versions, and
                                   for each payload its file name and sha256
    model-<sha12>.safetensors      weights and BatchNorm running statistics
    corpus-<sha12>.txt             the training corpus's names (to flag existing names)
    train_state-<sha12>.safetensors  optimizer and RNG state, for resuming (optional)

Saving is crash-safe: payloads are content-addressed, so new ones never overwrite the
files the current meta.json names; meta.json is then replaced in one atomic rename (the
commit point), and only after that are unreferenced payloads removed. A kill at any
moment leaves either the old checkpoint or the new one, whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from safetensors.torch import load as load_safetensors
from torch import Tensor

from model.labels import LabelSpace
from model.registry import LanguageModel, build_model, config_from_dict, kind_of, label_sizes
from model.vocab import Vocab

FORMAT = "namegen-checkpoint"
FORMAT_VERSION = 1
META = "meta.json"

# WaveNet options removed in issue 16, with the values that meant "off". Checkpoints
# written before still list them: at these values they are dropped, at any other refused
# (the code that gave them meaning is at commit 780ea5d).
REMOVED_OPTIONS: dict[str, Any] = {
    "stacks": 1,
    "dilations_override": [],
    "level_dropout": [],
    "dropout_mask": "position",
    "name_dropout": 0.0,
    "layernorm": False,
    "dropout_path": "both",
    "residual_dropout": 0.0,
    "input_dropout": 0.0,
    "head_dropout": 0.0,
    "max_positions": 0,
    "head_positions": 0,
    "bn_eps": 1e-5,  # a constant since issue 18 (model/layers.py's BN_EPS)
}
REMOVED_AT = "780ea5d"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupted or does not match its description."""


def without_removed_options(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """A WaveNet config dict without the removed options it lists at their "off" values;
    ValueError naming the first one it sets to anything else."""
    if kind != "wavenet":
        return config
    for key, off in REMOVED_OPTIONS.items():
        value = config.get(key, off)
        if (list(value) if isinstance(value, tuple) else value) != off:
            raise ValueError(
                f"model option {key}={value!r} was removed after commit {REMOVED_AT}; "
                f"check out {REMOVED_AT} to use this checkpoint"
            )
    return {k: v for k, v in config.items() if k not in REMOVED_OPTIONS}


@dataclass
class Checkpoint:
    model: LanguageModel  # in eval mode
    vocab: Vocab
    meta: dict[str, Any]
    corpus_names: frozenset[str]
    path: Path
    labels: LabelSpace | None = None  # the label columns of a conditional model

    @property
    def fingerprint(self) -> str:
        """sha256 of the weights file: names exactly these weights."""
        return str(self.meta["files"]["model"]["sha256"])


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
    }


def _fsync_write(path: Path, data: bytes) -> None:
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    path: str | Path,
    model: LanguageModel,
    vocab: Vocab,
    *,
    meta: dict[str, Any],
    corpus_names: Iterable[str],
    train_state: dict[str, Tensor] | None = None,
    labels: LabelSpace | None = None,
) -> None:
    """Write a checkpoint directory (created if needed). `meta` is stored as given, with
    the model config, vocab, label space, payload list and library versions filled in.
    Raises ValueError when `labels` does not match the model's label columns."""
    sizes = labels.sizes if labels is not None else ()
    if label_sizes(model.config) != sizes:
        raise ValueError(f"model label_sizes {label_sizes(model.config)} != the labels' {sizes}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    payloads: dict[str, tuple[str, bytes]] = {
        "model": (".safetensors", safetensors.torch.save(weights)),
        "corpus": (".txt", ("\n".join(sorted(set(corpus_names))) + "\n").encode("utf-8")),
    }
    if train_state is not None:
        state = {k: v.detach().to("cpu").contiguous() for k, v in train_state.items()}
        payloads["train_state"] = (".safetensors", safetensors.torch.save(state))

    files: dict[str, dict[str, str]] = {}
    for kind, (ext, data) in payloads.items():
        sha = hashlib.sha256(data).hexdigest()
        name = f"{kind}-{sha[:12]}{ext}"
        if not (path / name).exists():
            _fsync_write(path / name, data)
        files[kind] = {"path": name, "sha256": sha}

    record = {
        **{k: v for k, v in meta.items() if k != "labels"},  # the `labels` argument decides
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_kind": kind_of(model.config),
        "model_config": model.config.to_dict(),
        "vocab": "".join(vocab.chars),
        **({"labels": labels.to_dict()} if labels is not None else {}),
        "num_params": model.num_params(),
        "files": files,
        "versions": library_versions(),
    }
    _fsync_write(path / META, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    _fsync_dir(path)  # the commit point: the new meta.json is durable

    referenced = {f["path"] for f in files.values()}
    for stale in path.glob("*-*.*"):
        if stale.name not in referenced and stale.name.split("-")[0] in (
            "model",
            "corpus",
            "train_state",
        ):
            stale.unlink(missing_ok=True)


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    meta_path = path / META
    if not meta_path.is_file():
        what = "directory does not exist" if not path.exists() else f"{META} is missing"
        raise CheckpointError(f"no checkpoint at {path}: {what}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path} is corrupted: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not a namegen checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path} has format version {meta.get('format_version')}, "
            f"this code reads version {FORMAT_VERSION}"
        )
    for key in ("model_config", "vocab", "files"):
        if key not in meta:
            raise CheckpointError(f"{meta_path} lacks {key!r}")
    if "model" not in meta["files"] or "corpus" not in meta["files"]:
        raise CheckpointError(f"{meta_path} does not list the model and corpus files")
    return meta


def _read_payload(path: Path, meta: dict[str, Any], kind: str) -> bytes:
    entry = meta["files"][kind]
    file = path / entry["path"]
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path}: {kind} file {entry['path']} is missing")
    data: bytes = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path}: {kind} file {entry['path']} is truncated or corrupted "
            f"(sha256 does not match {META})"
        )
    return data


def _load_tensors(path: Path, meta: dict[str, Any], kind: str) -> dict[str, Tensor]:
    data = _read_payload(path, meta, kind)
    try:
        return load_safetensors(data)  # parses the safetensors format: no pickle
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(
            f"checkpoint {path}: {kind} file is not valid safetensors: {e}"
        ) from e


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; the model comes back in eval mode on `device`."""
    path = Path(path)
    meta = read_meta(path)
    kind = meta.get("model_kind", "wavenet")
    try:
        config_dict = without_removed_options(kind, dict(meta["model_config"]))
        config = config_from_dict(kind, config_dict)
        vocab = Vocab(tuple(meta["vocab"]))
        labels = LabelSpace.from_dict(meta["labels"]) if meta.get("labels") else None
    except (TypeError, ValueError) as e:  # LabelError is a ValueError
        raise CheckpointError(
            f"checkpoint {path}: invalid model config, vocab or labels: {e}"
        ) from e
    sizes = labels.sizes if labels is not None else ()
    if label_sizes(config) != sizes:
        raise CheckpointError(
            f"checkpoint {path}: model label_sizes {label_sizes(config)} != the labels' {sizes}"
        )
    if config.vocab_size != vocab.size:
        raise CheckpointError(
            f"checkpoint {path}: vocab has {vocab.size} characters, "
            f"model expects {config.vocab_size}"
        )
    weights = _load_tensors(path, meta, "model")
    model = build_model(config)
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(weights), set(weights) - set(expected)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path}: weights do not match the config "
            f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        )
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"checkpoint {path}: {key} has shape {tuple(value.shape)}, "
                f"the config implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict(weights)
    model.to(device).eval()
    corpus = _read_payload(path, meta, "corpus").decode("utf-8").splitlines()  # "mary ann"
    return Checkpoint(model, vocab, meta, frozenset(corpus), path, labels)


def load_train_state(path: str | Path) -> dict[str, Tensor]:
    """The optimizer and RNG tensors saved for resuming."""
    path = Path(path)
    meta = read_meta(path)
    if "train_state" not in meta["files"]:
        raise CheckpointError(f"checkpoint {path} has no training state to resume from")
    return _load_tensors(path, meta, "train_state")
