"""Global conditioning on labels: the full forward, packed rows, the cached sampler."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from model import IGNORE_INDEX, WaveNet, WaveNetConfig
from model.incremental import IncrementalWaveNet, State
from model.wavenet import Level
from tests.model.test_wavenet import OPTION_CONFIGS, option_model

SIZES = (3, 5)  # e.g. sex (unknown, F, M) and four decades


def conditional(options: dict | None = None, seed: int = 0) -> WaveNet:
    """A random conditional model (eval mode) whose labels matter: the projections,
    zero at initialisation, are drawn at random."""
    model = option_model({**(options or {}), "label_sizes": SIZES}, seed)
    with torch.no_grad():
        for level in model.levels:
            assert isinstance(level, Level) and level.cond is not None
            level.cond.weight.normal_(std=0.3)
        assert model.head_cond is not None
        model.head_cond.weight.normal_(std=0.3)
    return model


def random_labels(rows: int, seed: int = 5) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, n, (rows,), generator=g) for n in SIZES], dim=1)


def random_names(rows: int, length: int, seed: int = 1) -> Tensor:
    idx = torch.randint(1, 27, (rows, length), generator=torch.Generator().manual_seed(seed))
    idx[:, 0] = 0
    return idx


def test_without_labels_the_model_is_the_plain_one() -> None:
    plain = WaveNet(WaveNetConfig())
    assert plain.num_params() == 76_579 and not list(plain.label_emb)
    assert all(level.cond is None for level in plain.levels) and plain.head_cond is None
    keys = set(plain.state_dict())
    assert not any("label" in k or "cond" in k for k in keys)
    with pytest.raises(ValueError, match="no label columns"):
        plain(torch.zeros(2, 3, dtype=torch.long), labels=torch.zeros(2, 0, dtype=torch.long))


def test_an_untrained_conditional_model_starts_as_the_plain_one() -> None:
    """Zero projections: with the plain model's weights it gives the plain model's logits
    under any labels; its state dict adds only the label parts."""
    torch.manual_seed(0)
    plain = WaveNet(WaveNetConfig(n_embd=10, n_hidden=16, gated=True)).eval()
    cond = WaveNet(WaveNetConfig(n_embd=10, n_hidden=16, gated=True, label_sizes=SIZES)).eval()
    extra = set(cond.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) <= set(cond.state_dict())
    assert extra == {
        "label_emb.0.weight",
        "label_emb.1.weight",
        "head_cond.weight",
        *(f"levels.{i}.cond.weight" for i in range(3)),
    }
    cond.load_state_dict(plain.state_dict(), strict=False)
    idx = random_names(4, 9)
    with torch.no_grad():
        torch.testing.assert_close(cond(idx, labels=random_labels(4))[0], plain(idx)[0])


def test_labels_are_checked() -> None:
    model = conditional()
    idx = random_names(4, 6)
    for bad in (torch.zeros(4, 3), torch.zeros(3, 2), torch.zeros(4, 5, 2)):
        with pytest.raises(ValueError, match="labels must be"):
            model(idx, labels=bad.long())
    with pytest.raises(ValueError, match="out of range"):
        model(idx, labels=torch.tensor([[0, 5]] * 4))
    with pytest.raises(ValueError, match=">= 2"):
        WaveNetConfig(label_sizes=(3, 1))


def test_unknown_labels_are_the_default_and_labels_matter() -> None:
    model = conditional()
    idx = random_names(4, 8)
    with torch.no_grad():
        none = model(idx)[0]
        torch.testing.assert_close(none, model(idx, labels=torch.zeros(4, 2).long())[0])
        torch.testing.assert_close(none, model(idx, labels=torch.zeros(1, 2).long())[0])
        labelled = model(idx, labels=torch.tensor([[1, 2]] * 4))[0]
    assert not torch.allclose(none, labelled, atol=1e-3)


@pytest.mark.parametrize("options", [{}, *OPTION_CONFIGS])
def test_each_row_sees_its_own_labels(options: dict) -> None:
    """Rows with mixed labels in one batch give what each gives alone, per-row and
    per-position labels agree, and the pad equals explicit left padding by boundary
    tokens under the row's labels."""
    model = conditional(options)
    idx, labels = random_names(6, 9), random_labels(6)
    rf = model.config.receptive_field
    padded = torch.cat([torch.zeros(6, rf - 1, dtype=torch.long), idx], dim=1)
    with torch.no_grad():
        together = model(idx, labels=labels)[0]
        for i in range(6):
            alone = model(idx[i : i + 1], labels=labels[i : i + 1])[0]
            torch.testing.assert_close(alone[0], together[i], rtol=1e-5, atol=1e-5)
        per_position = labels[:, None, :].expand(6, 9, 2)
        torch.testing.assert_close(model(idx, labels=per_position)[0], together)
        torch.testing.assert_close(model(padded, labels=labels)[0][:, rf - 1 :], together)


def pack(names: list[Tensor], labels: Tensor, row_len: int) -> tuple[Tensor, ...]:
    """Names (each [., c1..cn, .] as input then target) end to end in rows of row_len:
    x, y, offsets (R, row_len) and labels per position (R, row_len, L)."""
    rows: list[list[tuple[int, int, int, int]]] = [[]]  # (x, y, offset, name) per position
    for n, name in enumerate(names):
        if len(rows[-1]) + len(name) - 1 > row_len:
            rows.append([])
        for t in range(len(name) - 1):
            rows[-1].append((int(name[t]), int(name[t + 1]), t, n))
    x = torch.zeros(len(rows), row_len, dtype=torch.long)
    y = torch.full_like(x, IGNORE_INDEX)
    offsets = torch.zeros_like(x)
    per_position = torch.zeros(len(rows), row_len, labels.shape[1], dtype=torch.long)
    for r, row in enumerate(rows):
        for c, (xi, yi, t, n) in enumerate(row):
            x[r, c], y[r, c], offsets[r, c], per_position[r, c] = xi, yi, t, labels[n]
    return x, y, offsets, per_position


@pytest.mark.parametrize("options", [{}, *OPTION_CONFIGS])
def test_packed_rows_with_labels_per_position_equal_one_name_per_row(options: dict) -> None:
    """Same logits in eval mode; in training mode the same loss and gradients (BatchNorm
    sees the same positions, and the labels come in after it)."""
    model = conditional({**options, "dropout": 0.0})
    g = torch.Generator().manual_seed(3)
    lengths = [4, 7, 1, 12, 3, 5, 2, 9]
    names = [
        torch.cat([torch.zeros(1), torch.randint(1, 27, (n,), generator=g), torch.zeros(1)])
        for n in lengths
    ]
    labels = random_labels(len(names))
    x, y, offsets, per_position = pack(names, labels, 16)
    assert x.shape[0] < len(names)
    alone_x = torch.zeros(len(names), max(lengths) + 1, dtype=torch.long)
    alone_y = torch.full_like(alone_x, IGNORE_INDEX)
    for i, name in enumerate(names):
        alone_x[i, : len(name) - 1], alone_y[i, : len(name) - 1] = name[:-1], name[1:]
    with torch.no_grad():
        packed = model(x, y, offsets, per_position)[0]
        alone = model(alone_x, alone_y, labels=labels)[0]
        torch.testing.assert_close(packed[y != IGNORE_INDEX], alone[alone_y != IGNORE_INDEX])
    grads = []
    for args in ((x, y, offsets, per_position), (alone_x, alone_y, None, labels)):
        model.train().zero_grad()
        loss = model(*args)[1]
        assert loss is not None
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = grads
    torch.testing.assert_close(loss_a, loss_b)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_labels_come_in_after_batchnorm() -> None:
    """The first level's BatchNorm statistics are those of the conv output alone (deeper
    levels' inputs depend on the labels through the levels below)."""
    idx = random_names(8, 7)
    means = []
    for labels in (None, random_labels(8)):
        model = conditional().train()
        model(idx, torch.roll(idx, -1, 1), labels=labels)
        means.append(model.levels[0].bn.running_mean.clone())
    torch.testing.assert_close(means[0], means[1])


def assert_steps_equal_full_forward(model: WaveNet, labels: Tensor | None, length: int) -> None:
    """The cached sampler, stepped through random names with mixed labels, compacted to
    every other row halfway and joined by fresh rows, gives the full forward's logits."""
    rows = 6 if labels is None else labels.shape[0]
    net = IncrementalWaveNet(model)
    idx = random_names(rows, length)
    with torch.no_grad():
        full = model(idx, labels=labels)[0]
    state = net.init_state(rows, labels)
    keep = torch.arange(0, rows, 2)
    for t in range(length):
        if t == length // 2:  # compaction: only the kept rows go on
            state, idx, full = state.take(keep), idx[keep], full[keep]
        logits = net.step(idx[:, t], state, t)
        torch.testing.assert_close(logits, full[:, t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("options", [{}, *OPTION_CONFIGS])
def test_cached_sampler_equals_the_full_forward_with_mixed_labels(options: dict) -> None:
    model = conditional(options)
    assert_steps_equal_full_forward(model, random_labels(8), 14)
    assert_steps_equal_full_forward(model, None, 10)  # all unknown


def test_cached_sampler_without_labels_refuses_them() -> None:
    net = IncrementalWaveNet(option_model({}))
    with pytest.raises(ValueError, match="no label columns"):
        net.init_state(2, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be"):
        IncrementalWaveNet(conditional()).init_state(2, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        IncrementalWaveNet(conditional()).init_state(1, torch.tensor([[3, 0]]))


def test_fresh_rows_may_join_a_batch_at_any_step() -> None:
    """State.cat: rows started later, with other labels, step as if alone from t = 0."""
    model = conditional({"gated": True, "residual": True, "n_embd": 16})
    net = IncrementalWaveNet(model)
    early, late = random_labels(3, seed=1), random_labels(2, seed=2)
    idx_early, idx_late = random_names(3, 12, seed=1), random_names(2, 8, seed=2)
    with torch.no_grad():
        full_late = model(idx_late, labels=late)[0]
    state = net.init_state(3, early)
    for t in range(4):
        net.step(idx_early[:, t], state, t)
    state = State.cat([state, net.init_state(2, late)])
    for s in range(8):
        tokens = torch.cat([idx_early[:, 4 + s], idx_late[:, s]])
        logits = net.step(tokens, state, 4 + s)
        torch.testing.assert_close(logits[3:], full_late[:, s], rtol=1e-5, atol=1e-5)
