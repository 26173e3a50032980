"""Training runs end to end on a small corpus; resuming gives the same weights."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.registry import MODEL_KINDS
from training.config import TrainConfig
from training.trainer import train

MODEL_FIELDS = {f.name for cls in MODEL_KINDS.values() for f in fields(cls)}


def tiny(corpus: Path, out: Path, **overrides: object) -> TrainConfig:
    """A run of a few seconds; `model` names the kind, model fields go into its config."""
    kind = str(overrides.pop("model", "wavenet"))
    model = {"n_embd": 8, "n_hidden": 32}
    model.update({k: overrides.pop(k) for k in list(overrides) if k in MODEL_FIELDS})  # type: ignore[misc]
    options: dict = dict(
        corpus=str(corpus),
        out=str(out),
        model=MODEL_KINDS[kind](**model),
        steps=40,
        batch_size=32,
        eval_interval=10,
        warmup_steps=5,
        progress=False,
        threads=1,
    )
    options.update(overrides)
    return TrainConfig(**options)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_run_writes_a_complete_checkpoint(small_corpus: Path, tmp_path: Path) -> None:
    result = train(tiny(small_corpus, tmp_path / "run"))
    loaded = load_checkpoint(tmp_path / "run")
    m = loaded.meta["metrics"]
    assert {"train_loss", "val_loss", "test_loss", "num_params", "steps", "wall_time_s"} <= set(m)
    assert m["val_loss"] < 3.2  # below the uniform ln(27) = 3.30 after 40 steps
    assert m["steps"] == 40 and result.metrics == m
    assert loaded.meta["corpus"]["lines"] == 600
    assert loaded.meta["split"] == {"seed": 42, "train": 480, "val": 60, "test": 60}
    assert len(loaded.corpus_names) == 600
    assert not (tmp_path / "run" / "last").exists()


def test_same_seed_same_weights(small_corpus: Path, tmp_path: Path) -> None:
    train(tiny(small_corpus, tmp_path / "a", steps=20))
    train(tiny(small_corpus, tmp_path / "b", steps=20))
    assert_same_weights(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize(
    ("interrupt_at", "ema_decay"),
    [(20, 0.0), (25, 0.0), (25, 0.9)],  # at a save point, between two; weight averaging
)
def test_resumed_run_matches_uninterrupted(
    small_corpus: Path, tmp_path: Path, interrupt_at: int, ema_decay: float
) -> None:
    train(tiny(small_corpus, tmp_path / "whole", ema_decay=ema_decay))
    cfg = tiny(small_corpus, tmp_path / "resumed", ema_decay=ema_decay)
    train(cfg, stop_after=interrupt_at)
    assert (tmp_path / "resumed" / "last" / "meta.json").exists()
    train(cfg, resume=True)
    assert_same_weights(tmp_path / "whole", tmp_path / "resumed")


def test_resume_refuses_other_options(small_corpus: Path, tmp_path: Path) -> None:
    train(tiny(small_corpus, tmp_path / "r"), stop_after=10)
    with pytest.raises(ValueError, match="other training options"):
        train(tiny(small_corpus, tmp_path / "r", lr=0.1), resume=True)


def test_sgd_step_schedule() -> None:
    cfg = TrainConfig(
        corpus="",
        out="",
        optimizer="sgd",
        lr=0.1,
        schedule="step",
        decay_steps=(150_000,),
        steps=200_000,
    )
    assert cfg.lr_at(0) == 0.1 and cfg.lr_at(149_999) == 0.1
    assert cfg.lr_at(150_000) == pytest.approx(0.01)


def test_cosine_schedule_warms_up_and_decays() -> None:
    cfg = TrainConfig(corpus="", out="", lr=1.0, warmup_steps=10, steps=110)
    assert cfg.lr_at(0) == pytest.approx(0.1) and cfg.lr_at(9) == pytest.approx(1.0)
    assert cfg.lr_at(60) == pytest.approx(0.5) and cfg.lr_at(110) == pytest.approx(0.0)


def test_training_writes_diagnostics_and_plots(small_corpus: Path, tmp_path: Path) -> None:
    train(tiny(small_corpus, tmp_path / "run", diagnose_interval=5))
    diag = tmp_path / "run" / "diagnostics"
    lines = (diag / "diagnostics.jsonl").read_text().splitlines()
    assert len(lines) == 8  # every 5th of 40 steps
    for name in ("loss.png", "activations.png", "gradients.png", "update_ratios.png"):
        assert (diag / name).read_bytes()[:4] == b"\x89PNG"
    assert load_checkpoint(tmp_path / "run").meta["history"][-1]["step"] == 40


def test_packed_batches_train_a_wavenet_only(small_corpus: Path, tmp_path: Path) -> None:
    result = train(tiny(small_corpus, tmp_path / "packed", batch_unit="packed"))
    assert result.metrics["val_loss"] < 3.2
    with pytest.raises(ValueError, match="packed"):
        tiny(small_corpus, tmp_path / "lstm", batch_unit="packed", model="lstm")


def test_wavenet_options_reach_the_checkpoint(small_corpus: Path, tmp_path: Path) -> None:
    """The model config travels from the training config into the saved model, its
    vocab_size set from the corpus."""
    options = dict(gated=True, residual=True, skip=True, n_embd=16, head_hidden=16, dropout=0.3)
    result = train(tiny(small_corpus, tmp_path / "run", **options))
    assert result.metrics["val_loss"] < 3.2
    loaded = load_checkpoint(tmp_path / "run")
    config = loaded.model.config.to_dict()
    assert {k: config[k] for k in options} == options
    assert config["vocab_size"] == loaded.vocab.size == 27
    recorded = loaded.meta["training"]["config"]["model"]
    assert recorded == {"kind": "wavenet", **config}


def test_any_alphabet_trains_and_the_vocab_holds_it(tmp_path: Path) -> None:
    """A corpus with hyphens, apostrophes, spaces and accents trains as it is; the
    checkpoint's vocabulary is the corpus's."""
    names = ["jean-luc", "o'brien", "mary ann", "zoë", "émile", "anne-marie", "d'arcy"] * 30
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(names) + "\n")
    cfg = tiny(corpus, tmp_path / "run", steps=5, eval_interval=5, keep_duplicates=True)
    train(cfg)
    loaded = load_checkpoint(tmp_path / "run")
    assert {"-", "'", " ", "ë", "é"} <= set(loaded.vocab.chars)
    assert loaded.model.config.vocab_size == loaded.vocab.size
    assert loaded.vocab.encode("zoë")  # every corpus name is in the vocabulary
    assert {"mary ann", "o'brien"} <= loaded.corpus_names  # names, not words


def test_a_given_vocab_is_the_checkpoints_and_other_characters_are_bad_lines(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(["anna", "bob", "zoë", "abba"] * 40) + "\n")
    vocab = "abnoz"  # no 'ë': zoë is a bad line
    with pytest.raises(ValueError, match="'ë' in 'zoë'"):
        train(tiny(corpus, tmp_path / "error", vocab=vocab, keep_duplicates=True))
    cfg = tiny(corpus, tmp_path / "run", vocab=vocab + "xy", on_bad="skip", keep_duplicates=True)
    cfg.steps = cfg.eval_interval = 5
    train(cfg)
    loaded = load_checkpoint(tmp_path / "run")
    assert "".join(loaded.vocab.chars) == ".abnoxyz"  # the given letters, used or not
    assert loaded.meta["corpus"]["names"] == 120
