"""A backward run reads names reversed; training.combine puts it beside a forward run in
one checkpoint, whole or not at all, and refuses pairs that do not match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from model.checkpoint import CheckpointError, load_checkpoint
from model.incremental import IncrementalWaveNet
from model.wavenet import WaveNet
from tests.training import both_directions
from tests.training.both_directions import trained
from tests.training.test_labelled_training import synthetic_csv
from tests.training.test_trainer import tiny
from training import combine
from training.trainer import train

# the checkpoints' fixtures (pytest finds them by name in this module)
both_checkpoint = both_directions.both_checkpoint
forward_checkpoint = both_directions.forward_checkpoint
backward_checkpoint = both_directions.backward_checkpoint


def test_a_backward_run_learns_names_reversed(
    forward_checkpoint: Path, backward_checkpoint: Path
) -> None:
    fwd, bwd = load_checkpoint(forward_checkpoint), load_checkpoint(backward_checkpoint)
    assert (fwd.direction, bwd.direction) == ("forward", "backward")
    assert bwd.meta["split"] == fwd.meta["split"]  # the same split by name
    assert bwd.corpus_names == fwd.corpus_names  # stored as written, for in_corpus
    assert bwd.meta["training"]["config"]["direction"] == "backward"
    # the corpus's names end in 'a' or 'o': the backward network's first character
    assert isinstance(bwd.model, WaveNet)
    with torch.no_grad():
        logits, _ = bwd.model(torch.zeros(1, 1, dtype=torch.long))
    first = torch.softmax(logits[0, 0], dim=-1)
    assert float(first[bwd.vocab.stoi["a"]] + first[bwd.vocab.stoi["o"]]) > 0.8


def test_the_combined_checkpoint_holds_both_networks(
    both_checkpoint: Path, forward_checkpoint: Path, backward_checkpoint: Path
) -> None:
    both = load_checkpoint(both_checkpoint)
    fwd, bwd = load_checkpoint(forward_checkpoint), load_checkpoint(backward_checkpoint)
    assert both.directions == ["forward", "backward"] and both.backward is not None
    assert both.labels is not None and both.labels == fwd.labels
    for a, b in ((both.model, fwd.model), (both.backward, bwd.model)):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), key
    second = both.meta["backward"]
    assert second["metrics"]["val_loss"] == bwd.meta["metrics"]["val_loss"]
    assert second["file"]["path"].startswith("backward-") and len(second["file"]["sha256"]) == 64
    assert {"model_config", "training", "num_params"} <= set(second)
    assert both.meta["files"]["model"] == fwd.meta["files"]["model"]


def test_the_incremental_backward_sampler_equals_its_full_forward_pass(
    both_checkpoint: Path,
) -> None:
    both = load_checkpoint(both_checkpoint)
    assert isinstance(both.backward, WaveNet) and both.labels is not None
    names = sorted(both.corpus_names)[:8]
    length = max(map(len, names)) + 1
    idx = torch.zeros(len(names), length, dtype=torch.long)
    for i, name in enumerate(names):
        idx[i, 1 : len(name) + 1] = torch.tensor(both.vocab.encode(name[::-1]))
    labels = torch.tensor([[1 + i % 2, 1 + i // 2 % 2] for i in range(len(names))])
    with torch.no_grad():
        full, _ = both.backward(idx, labels=labels)
    net = IncrementalWaveNet(both.backward)
    state = net.init_state(len(names), labels)
    for t in range(length):
        step = net.step(idx[:, t], state, t)
        torch.testing.assert_close(step, full[:, t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("what", ["missing", "flipped"])
def test_a_corrupt_second_network_is_refused_by_name(
    both_checkpoint: Path, tmp_path: Path, what: str
) -> None:
    path = tmp_path / "both"
    shutil.copytree(both_checkpoint, path)
    weights = path / json.loads((path / "meta.json").read_text())["backward"]["file"]["path"]
    if what == "missing":
        weights.unlink()
    else:
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"backward network file {weights.name}"):
        load_checkpoint(path)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def refused(forward: Path, backward: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["--forward", str(forward), "--backward", str(backward), "--out", str(out)]
    assert combine.main(argv) == 2
    assert not out.exists() and not leftovers(out.parent)
    return capsys.readouterr().err


def test_combine_refuses_mismatched_vocab_labels_corpus_and_directions(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    forward_checkpoint: Path,
    backward_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    root = tmp_path_factory.getbasetemp()
    other_vocab = trained(root, "backward", steps=5, vocab="abcdefghijklmnopqrstuvwxyz")
    assert "the vocabularies differ" in refused(forward_checkpoint, other_vocab, out, capsys)
    names = [line.split(",")[0] for line in synthetic_csv(tmp_path).read_text().split()[1:]]
    (tmp_path / "plain.txt").write_text("\n".join(names) + "\n")
    plain = tmp_path / "plain"
    train(tiny(tmp_path / "plain.txt", plain, steps=5, direction="backward", diagnostics=False))
    assert "the label spaces differ" in refused(forward_checkpoint, plain, out, capsys)
    (tmp_path / "fewer").mkdir()
    fewer = synthetic_csv(tmp_path / "fewer", 500)
    other = tmp_path / "other"
    train(tiny(fewer, other, steps=5, direction="backward", diagnostics=False, batch_unit="packed"))
    assert "the corpora differ" in refused(forward_checkpoint, other, out, capsys)
    swapped = refused(backward_checkpoint, forward_checkpoint, out, capsys)
    assert "holds a backward network (train one with --direction forward)" in swapped


def test_combine_is_all_or_nothing_and_replaces_only_with_force(
    tmp_path: Path,
    forward_checkpoint: Path,
    backward_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out"
    real = combine.fsync_write
    written: list[str] = []

    def dying(path: Path, data: bytes) -> None:
        written.append(path.name)
        if path.name == "meta.json":
            raise KeyboardInterrupt("killed mid-write")
        real(path, data)

    monkeypatch.setattr(combine, "fsync_write", dying)
    with pytest.raises(KeyboardInterrupt):
        combine.write_combined(
            forward_checkpoint, backward_checkpoint, out, force=False, command=""
        )
    monkeypatch.undo()
    assert "meta.json" in written and not out.exists() and not leftovers(tmp_path)

    out.mkdir()
    (out / "old.txt").write_text("the previous checkpoint")
    with pytest.raises(combine.CombineError, match="exists"):
        combine.write_combined(
            forward_checkpoint, backward_checkpoint, out, force=False, command=""
        )
    combine.write_combined(forward_checkpoint, backward_checkpoint, out, force=True, command="x")
    assert not (out / "old.txt").exists() and not leftovers(tmp_path)
    loaded = load_checkpoint(out)
    assert loaded.backward is not None and loaded.meta["combined"]["command"] == "x"
