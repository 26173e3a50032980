"""Checkpoint round trip, validation of broken files, and crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import model.payloads as payloads
from model import Vocab, WaveNet, WaveNetConfig
from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.labels import LabelSpace
from model.lstm import CharLSTM, LSTMConfig
from tests.conftest import REPO

VOCAB = Vocab.from_names(["abcdefghijklmnopqrstuvwxyz"])


def make_model(seed: int) -> WaveNet:
    torch.manual_seed(seed)
    model = WaveNet(WaveNetConfig(n_embd=8, n_hidden=16))
    with torch.no_grad():
        for level in model.levels:
            level.bn.running_mean.normal_()
    return model.eval()


def probe_logits(model: WaveNet) -> torch.Tensor:
    idx = torch.tensor([[0, 5, 13, 13, 1], [0, 1, 22, 1, 0]])
    with torch.no_grad():
        return model(idx)[0]


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, WaveNet]:
    model = make_model(0)
    save_checkpoint(tmp_path / "ck", model, VOCAB, meta={"note": "x"}, corpus_names=["emma", "ava"])
    return tmp_path / "ck", model


def test_round_trip_gives_identical_logits(saved: tuple[Path, WaveNet]) -> None:
    path, model = saved
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert torch.equal(probe_logits(loaded.model), probe_logits(model))
    assert loaded.vocab == VOCAB
    assert loaded.corpus_names == {"emma", "ava"}
    assert loaded.meta["note"] == "x" and loaded.meta["num_params"] == model.num_params()
    assert {"torch", "safetensors", "python"} <= set(loaded.meta["versions"])


def test_no_pickle_files(saved: tuple[Path, WaveNet]) -> None:
    path, _ = saved
    suffixes = {p.suffix for p in path.iterdir()}
    assert suffixes == {".json", ".safetensors", ".txt"}


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"meta\.json is missing"):
        load_checkpoint(tmp_path / "empty")


def weights_file(path: Path) -> Path:
    return path / json.loads((path / "meta.json").read_text())["files"]["model"]["path"]


def test_truncated_weights(saved: tuple[Path, WaveNet]) -> None:
    path, _ = saved
    w = weights_file(path)
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_flipped_byte(saved: tuple[Path, WaveNet]) -> None:
    path, _ = saved
    w = weights_file(path)
    data = bytearray(w.read_bytes())
    data[len(data) - 100] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_corrupted_meta(saved: tuple[Path, WaveNet]) -> None:
    path, _ = saved
    (path / "meta.json").write_text('{"format": "namegen-checkpoint", ')
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_config_mismatch(saved: tuple[Path, WaveNet]) -> None:
    path, _ = saved
    meta = json.loads((path / "meta.json").read_text())
    meta["model_config"]["n_hidden"] = 32
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


def test_newer_format_rejected(saved: tuple[Path, WaveNet]) -> None:
    path, _ = saved
    meta = json.loads((path / "meta.json").read_text())
    meta["format_version"] = 99
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_crash_before_commit_leaves_previous_intact(
    saved: tuple[Path, WaveNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that dies after writing new weights but before meta.json changes nothing."""
    path, model = saved
    real_replace = os.replace

    def dying_replace(src: str, dst: str | Path) -> None:
        if Path(dst).name == "meta.json":
            raise KeyboardInterrupt("killed mid-save")
        real_replace(src, dst)

    monkeypatch.setattr(payloads.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, make_model(1), VOCAB, meta={}, corpus_names=["zoe"])
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert torch.equal(probe_logits(loaded.model), probe_logits(model))
    assert loaded.corpus_names == {"emma", "ava"}


SAVER = textwrap.dedent(
    """
    import sys, torch
    from tests.model.test_checkpoint import VOCAB, make_model
    from model.checkpoint import save_checkpoint
    i = 0
    while True:
        save_checkpoint(sys.argv[1], make_model(i), VOCAB, meta={"i": i}, corpus_names=[str(i)])
        i += 1
    """
)


def test_sigkill_during_saves_never_leaves_a_broken_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ck"
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], cwd=REPO)
        deadline = time.monotonic() + 30
        while not (path / "meta.json").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05 + 0.07 * attempt)  # land the kill at different points of a save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = load_checkpoint(path)
        i = loaded.meta["i"]
        assert torch.equal(probe_logits(loaded.model), probe_logits(make_model(i)))
        assert loaded.corpus_names == {str(i)}


def rewrite_model_config(path: Path, **changes: object) -> None:
    meta = json.loads((path / "meta.json").read_text())
    meta["model_config"].update(changes)
    (path / "meta.json").write_text(json.dumps(meta))


# WaveNetConfig().to_dict() at commit 780ea5d, less the fields that remain.
OLD_DEFAULTS = {
    "dilations_override": [],
    "stacks": 1,
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
    "bn_eps": 1e-5,
}


def test_removed_options_at_their_old_defaults_are_dropped(saved: tuple[Path, WaveNet]) -> None:
    """Checkpoints written before issue 16 list every removed option, switched off."""
    path, model = saved
    rewrite_model_config(path, **OLD_DEFAULTS)
    loaded = load_checkpoint(path)
    assert loaded.model.config == model.config
    assert torch.equal(probe_logits(loaded.model), probe_logits(model))


@pytest.mark.parametrize(
    ("key", "value"),
    [("stacks", 2), ("layernorm", True), ("level_dropout", [0.1, 0.2, 0.3]), ("max_positions", 8)],
)
def test_a_removed_option_in_use_is_refused_by_name(
    saved: tuple[Path, WaveNet], key: str, value: object
) -> None:
    path, _ = saved
    rewrite_model_config(path, **{**OLD_DEFAULTS, key: value})
    with pytest.raises(CheckpointError, match=rf"{key}=.* removed after commit 780ea5d"):
        load_checkpoint(path)


def test_lstm_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CharLSTM(LSTMConfig(n_embd=8, n_hidden=16, n_layers=2)).eval()
    save_checkpoint(tmp_path / "lstm", model, VOCAB, meta={}, corpus_names=["ava"])
    loaded = load_checkpoint(tmp_path / "lstm")
    assert isinstance(loaded.model, CharLSTM) and loaded.meta["model_kind"] == "lstm"
    idx = torch.tensor([[0, 5, 13, 13, 1]])
    with torch.no_grad():
        assert torch.equal(loaded.model(idx)[0], model(idx)[0])


def test_bn_eps_is_a_constant_now(saved: tuple[Path, WaveNet]) -> None:
    """Checkpoints written before issue 18 list bn_eps (the shipped one: 1e-5)."""
    path, model = saved
    rewrite_model_config(path, bn_eps=1e-5)
    assert torch.equal(probe_logits(load_checkpoint(path).model), probe_logits(model))
    rewrite_model_config(path, bn_eps=1e-3)
    with pytest.raises(CheckpointError, match=r"bn_eps=0\.001 was removed"):
        load_checkpoint(path)


LABELS = LabelSpace.build(
    ["sex", "decade"], [(("F", "1950"), 10.0), (("M", "1950"), 3.0), (("M", "2000"), 1.0)]
)


def labelled_model(sizes: tuple[int, ...] = LABELS.sizes) -> WaveNet:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(n_embd=8, n_hidden=16, label_sizes=sizes)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.3)  # the label projections start at zero
    return model


def test_round_trip_with_labels(tmp_path: Path) -> None:
    model = labelled_model()
    save_checkpoint(tmp_path / "ck", model, VOCAB, meta={}, corpus_names=["ava"], labels=LABELS)
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.labels == LABELS and loaded.model.config.label_sizes == (3, 3)
    idx = torch.tensor([[0, 5, 13, 13, 1]] * 2)
    labels = torch.tensor([[1, 1], [2, 2]])
    with torch.no_grad():
        assert torch.equal(loaded.model(idx, labels=labels)[0], model(idx, labels=labels)[0])
    assert load_checkpoint(saved_plain(tmp_path)).labels is None


def saved_plain(tmp_path: Path) -> Path:
    save_checkpoint(tmp_path / "plain", make_model(0), VOCAB, meta={}, corpus_names=["ava"])
    return tmp_path / "plain"


def test_labels_must_match_the_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"label_sizes \(3, 4\) != the labels' \(3, 3\)"):
        save_checkpoint(
            tmp_path / "a", labelled_model((3, 4)), VOCAB, meta={}, corpus_names=[], labels=LABELS
        )
    with pytest.raises(ValueError, match=r"label_sizes \(\) != the labels' \(3, 3\)"):
        save_checkpoint(
            tmp_path / "b", make_model(0), VOCAB, meta={}, corpus_names=[], labels=LABELS
        )
    with pytest.raises(ValueError, match=r"label_sizes \(3, 3\) != the labels' \(\)"):
        save_checkpoint(tmp_path / "c", labelled_model(), VOCAB, meta={}, corpus_names=[])
    path = saved_plain(tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "labels": LABELS.to_dict()}))
    with pytest.raises(CheckpointError, match=r"label_sizes \(\) != the labels' \(3, 3\)"):
        load_checkpoint(path)
    (path / "meta.json").write_text(json.dumps({**meta, "labels": {"columns": 3}}))
    with pytest.raises(CheckpointError, match="labels"):
        load_checkpoint(path)
