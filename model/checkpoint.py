"""Checkpoints: a directory of safetensors payloads plus `meta.json`, no pickle anywhere.

Layout of a checkpoint directory:
    meta.json                      config, vocab, training record, metrics, versions, and
                                   for each payload its file name and sha256
    model-<sha12>.safetensors      weights and BatchNorm running statistics
    corpus-<sha12>.txt             the training corpus's names (to flag existing names)
    train_state-<sha12>.safetensors  optimizer and RNG state, for resuming (optional)
    backward-<sha12>.safetensors   a second, right-to-left network (optional)

A network reads names left to right (`direction` "forward", the default) or right to left
("backward": trained on reversed names; meta.json's top-level `direction`). A checkpoint
with both (written by `python -m training.combine`) describes the forward network at the
top level, as a single-network checkpoint does, and the backward one in `backward`: its
model_kind, model_config, num_params, file (path and sha256), metrics, training (options
and command), corpus and split. Both share the vocab, the label space and the corpus.

Saving is crash-safe: payloads are content-addressed, so new ones never overwrite the
files the current meta.json names; meta.json is then replaced in one atomic rename (the
commit point), and only after that are unreferenced payloads removed. A kill at any
moment leaves either the old checkpoint or the new one, whole.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor

from model.labels import LabelSpace
from model.payloads import (
    META,
    entry_of,
    fsync_dir,
    fsync_write,
    load_tensors,
    read_payload,
)
from model.payloads import CheckpointError as CheckpointError  # where callers import it
from model.registry import LanguageModel, build_model, config_from_dict, kind_of, label_sizes
from model.vocab import Vocab

FORMAT = "namegen-checkpoint"
FORMAT_VERSION = 1
DIRECTIONS = ("forward", "backward")

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
    backward: LanguageModel | None = None  # the right-to-left network, when it has one

    @property
    def fingerprint(self) -> str:
        """sha256 of the weights file: names exactly these weights."""
        return str(self.meta["files"]["model"]["sha256"])

    @property
    def direction(self) -> str:
        """How `model` reads names: "forward" (left to right) or "backward"."""
        return str(self.meta.get("direction", "forward"))

    @property
    def directions(self) -> list[str]:
        """The directions of the networks it holds."""
        return [self.direction, *(["backward"] if self.backward is not None else [])]


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
    }


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
        files[kind] = entry_of(kind, ext, data)
        if not (path / files[kind]["path"]).exists():
            fsync_write(path / files[kind]["path"], data)

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
    fsync_write(path / META, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    fsync_dir(path)  # the commit point: the new meta.json is durable

    referenced = {f["path"] for f in files.values()}
    if "backward" in record:  # a combined checkpoint re-saved (calibrate) keeps it
        referenced.add(record["backward"]["file"]["path"])
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


def _network(
    path: Path,
    description: dict[str, Any],
    entry: dict[str, Any],
    what: str,
    vocab: Vocab,
    labels: LabelSpace | None,
    device: str | torch.device,
) -> LanguageModel:
    """The network `description` (its model_kind and model_config) with the weights of
    the file `entry` lists, checked against the vocab and labels; `what` names it."""
    kind = description.get("model_kind", "wavenet")
    try:
        config_dict = without_removed_options(kind, dict(description["model_config"]))
        config = config_from_dict(kind, config_dict)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: invalid {what} config: {e}") from e
    sizes = labels.sizes if labels is not None else ()
    if label_sizes(config) != sizes:
        raise CheckpointError(
            f"checkpoint {path}: {what} label_sizes {label_sizes(config)} != the labels' {sizes}"
        )
    if config.vocab_size != vocab.size:
        raise CheckpointError(
            f"checkpoint {path}: vocab has {vocab.size} characters, "
            f"{what} expects {config.vocab_size}"
        )
    weights = load_tensors(path, entry, f"{what} file")
    model = build_model(config)
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(weights), set(weights) - set(expected)
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path}: {what} weights do not match the config "
            f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        )
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"checkpoint {path}: {what} {key} has shape {tuple(value.shape)}, "
                f"the config implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict(weights)
    return model.to(device).eval()


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and validate a checkpoint; the networks come back in eval mode on `device`.
    A second network that is missing or corrupted is an error naming its file."""
    path = Path(path)
    meta = read_meta(path)
    try:
        vocab = Vocab(tuple(meta["vocab"]))
        labels = LabelSpace.from_dict(meta["labels"]) if meta.get("labels") else None
    except (TypeError, ValueError) as e:  # LabelError is a ValueError
        raise CheckpointError(f"checkpoint {path}: invalid vocab or labels: {e}") from e
    if meta.get("direction", "forward") not in DIRECTIONS:
        raise CheckpointError(f"checkpoint {path}: unknown direction {meta['direction']!r}")
    model = _network(path, meta, meta["files"]["model"], "model", vocab, labels, device)
    backward = None
    if "backward" in meta:
        second = meta["backward"]
        if not isinstance(second, dict) or not isinstance(second.get("file"), dict):
            raise CheckpointError(f"checkpoint {path}: {META} lists no backward network file")
        what = "backward network"
        backward = _network(path, second, second["file"], what, vocab, labels, device)
    corpus = read_payload(path, meta["files"]["corpus"], "corpus file")
    names = frozenset(corpus.decode("utf-8").splitlines())  # "mary ann"
    return Checkpoint(model, vocab, meta, names, path, labels, backward)


def load_train_state(path: str | Path) -> dict[str, Tensor]:
    """The optimizer and RNG tensors saved for resuming."""
    path = Path(path)
    meta = read_meta(path)
    if "train_state" not in meta["files"]:
        raise CheckpointError(f"checkpoint {path} has no training state to resume from")
    return load_tensors(path, meta["files"]["train_state"], "train_state file")
