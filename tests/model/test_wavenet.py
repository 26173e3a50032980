"""The conv WaveNet against an independently written tree (the lecture's form)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from model import IGNORE_INDEX, WaveNet, WaveNetConfig
from model.layers import Dropout, MaskedBatchNorm


# -- the lecture's layers, written independently ---------------------------------------
class TreeLinear:
    def __init__(self, weight: Tensor) -> None:
        self.weight = weight  # (fan_in, fan_out)

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.weight


class TreeBatchNormEval:
    def __init__(self, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor, eps: float):
        self.gamma, self.beta, self.mean, self.var, self.eps = gamma, beta, mean, var, eps

    def __call__(self, x: Tensor) -> Tensor:
        return self.gamma * (x - self.mean) / torch.sqrt(self.var + self.eps) + self.beta


class FlattenConsecutive:
    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)
        return x.squeeze(1) if x.shape[1] == 1 else x


def tree_logits(model: WaveNet, windows: Tensor) -> Tensor:
    """Lecture-style forward of (N, block_size) windows with `model`'s weights."""
    cfg = model.config
    x = model.wte.weight[windows]  # (N, block, C)
    for k, level in zip(cfg.kernel_sizes, model.levels, strict=True):
        x = FlattenConsecutive(k)(x)
        x = TreeLinear(level.conv.proj.weight.T)(x)
        bn = level.bn
        x = TreeBatchNormEval(bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps)(x)
        x = torch.tanh(x)
    return x @ model.lm_head.weight.T + model.lm_head.bias


def randomized(config: WaveNetConfig, seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    model = WaveNet(config)
    with torch.no_grad():  # make BatchNorm non-trivial so the test can catch its misuse
        for level in model.levels:
            level.bn.weight.uniform_(0.5, 1.5)
            level.bn.bias.normal_()
            level.bn.running_mean.normal_()
            level.bn.running_var.uniform_(0.5, 2.0)
        model.lm_head.weight.normal_()
    return model.eval()


@pytest.mark.parametrize("kernels", [(2, 2, 2), (8,), (3,), (2, 2, 2, 2), (4, 2)])
def test_every_position_equals_the_tree_on_its_window(kernels: tuple[int, ...]) -> None:
    model = randomized(WaveNetConfig(vocab_size=27, n_embd=10, n_hidden=16, kernel_sizes=kernels))
    block = model.config.receptive_field
    torch.manual_seed(1)
    names = torch.randint(1, 27, (5, 12))
    idx = torch.cat([torch.zeros(5, 1, dtype=torch.long), names], dim=1)  # (B, T) '.' first
    with torch.no_grad():
        logits, _ = model(idx)  # (B, T, V)
        padded = torch.cat([torch.zeros(5, block - 1, dtype=torch.long), idx], dim=1)
        for t in range(idx.shape[1]):
            windows = padded[:, t : t + block]  # the block characters ending at t
            torch.testing.assert_close(logits[:, t], tree_logits(model, windows))


def test_lecture_configuration_has_the_lecture_parameter_count() -> None:
    assert WaveNet(WaveNetConfig(n_embd=24, n_hidden=128)).num_params() == 76_579
    assert WaveNetConfig(kernel_sizes=(2, 2, 2)).dilations == (1, 2, 4)
    assert WaveNetConfig(kernel_sizes=(2, 2, 2)).receptive_field == 8


def test_initial_loss_is_near_uniform() -> None:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig())
    idx = torch.randint(0, 27, (32, 10))
    _, loss = model(idx, torch.randint(0, 27, (32, 10)))
    assert loss is not None and abs(loss.item() - torch.log(torch.tensor(27.0)).item()) < 0.1


def test_padding_does_not_bias_batchnorm_or_loss() -> None:
    """Training mode: extra padding with junk tokens changes nothing at real positions."""
    torch.manual_seed(0)
    idx = torch.randint(1, 27, (4, 8))
    idx[:, 0] = 0
    targets = torch.randint(0, 27, (4, 8))
    targets[0, 5:] = IGNORE_INDEX  # one shorter name inside the batch
    junk_idx = torch.cat([idx, torch.randint(0, 27, (4, 6))], dim=1)
    junk_targets = torch.cat([targets, torch.full((4, 6), IGNORE_INDEX)], dim=1)

    results = []
    for x, y in ((idx, targets), (junk_idx, junk_targets)):
        torch.manual_seed(0)
        model = WaveNet(WaveNetConfig()).train()
        logits, loss = model(x, y)
        assert loss is not None
        loss.backward()
        results.append((logits[:, :8], loss, model))
    (l1, loss1, m1), (l2, loss2, m2) = results
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(loss1, loss2)
    for b1, b2 in zip(m1.buffers(), m2.buffers(), strict=True):
        torch.testing.assert_close(b1, b2)
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad)


def test_eval_mode_same_logits_alone_or_in_a_batch() -> None:
    model = randomized(WaveNetConfig())
    torch.manual_seed(3)
    batch = torch.randint(1, 27, (16, 11))
    batch[:, 0] = 0
    with torch.no_grad():
        together, _ = model(batch)
        for i in range(16):
            n = 3 + i % 8  # each name alone, trimmed to its own length
            alone, _ = model(batch[i : i + 1, :n])
            torch.testing.assert_close(alone[0], together[i, :n], rtol=1e-5, atol=1e-5)


def test_train_mode_uses_batch_statistics_and_updates_running_ones() -> None:
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig()).train()
    before = model.levels[0].bn.running_mean.clone()
    idx = torch.randint(0, 27, (8, 9))
    model(idx, torch.randint(0, 27, (8, 9)))
    assert not torch.equal(before, model.levels[0].bn.running_mean)
    model.eval()
    frozen = model.levels[0].bn.running_mean.clone()
    model(idx)
    assert torch.equal(frozen, model.levels[0].bn.running_mean)


def test_masked_batchnorm_matches_var_mean_over_the_real_positions() -> None:
    """The weighted-sum statistics equal var_mean over the masked rows, gradients too."""
    torch.manual_seed(0)
    x = (torch.randn(5, 7, 12) * 3 + 1).requires_grad_()
    mask = torch.rand(5, 7) > 0.3
    bn = MaskedBatchNorm(12, eps=1e-5, momentum=0.1).train()
    with torch.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    out, _ = bn(x, torch.zeros(12), mask)
    var, mean = torch.var_mean(x[mask], dim=0, correction=0)
    expected = (x - mean) / torch.sqrt(var + 1e-5) * bn.weight + bn.bias
    torch.testing.assert_close(out[mask], expected[mask])
    n = int(mask.sum())
    torch.testing.assert_close(bn.running_mean, 0.1 * mean.detach())
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var.detach() * n / (n - 1))
    grad = torch.randn_like(x) * mask.unsqueeze(-1)
    (mine,) = torch.autograd.grad(out, x, grad)
    (theirs,) = torch.autograd.grad(expected, x, grad)
    torch.testing.assert_close(mine, theirs)


def test_dropout_keeps_the_mean_and_drops_p() -> None:
    drop = Dropout(0.35).train()
    torch.manual_seed(0)
    out = drop(torch.ones(200, 500))
    assert out.unique().tolist() == pytest.approx([0.0, 1.0 / 0.65])
    assert abs(float((out == 0).float().mean()) - 0.35) < 0.01
    assert abs(float(out.mean()) - 1.0) < 0.02
    assert not torch.equal(out, drop(torch.ones(200, 500)))  # a fresh mask per call
    assert torch.equal(drop.eval()(torch.ones(3, 4)), torch.ones(3, 4))


def test_config_round_trip_and_validation() -> None:
    cfg = WaveNetConfig(n_embd=8, kernel_sizes=(3, 2), gated=True, dropout=0.1)
    assert WaveNetConfig.from_dict(cfg.to_dict()) == cfg
    assert list(cfg.to_dict()) == [
        "vocab_size",
        "n_embd",
        "n_hidden",
        "kernel_sizes",
        "gated",
        "residual",
        "skip",
        "head_hidden",
        "dropout",
        "batchnorm",
        "bn_momentum",
        "label_sizes",
    ]
    for bad in ({"kernel_sizes": ()}, {"n_hidden": 0}, {"dropout": 1.0}, {"head_hidden": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            WaveNetConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bogus"):
        WaveNetConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_receptive_field() -> None:
    cfg = WaveNetConfig(kernel_sizes=(2, 2, 2, 2, 2))
    assert cfg.dilations == (1, 2, 4, 8, 16)
    assert cfg.receptive_field == 32
    assert WaveNetConfig(kernel_sizes=(8,)).receptive_field == 8
    assert WaveNetConfig(kernel_sizes=(3, 2)).dilations == (1, 3)
    assert WaveNetConfig(kernel_sizes=(3, 2)).receptive_field == 6


def test_without_batchnorm_the_convs_have_a_bias() -> None:
    model = WaveNet(WaveNetConfig(batchnorm=False))
    assert all(level.bn is None and level.conv.proj.bias is not None for level in model.levels)
    assert all(level.conv.proj.bias is None for level in WaveNet(WaveNetConfig()).levels)


OPTION_CONFIGS = [
    {"gated": True},
    {"residual": True, "n_embd": 16},
    {"residual": True, "skip": True, "gated": True, "kernel_sizes": (2, 2, 2, 2)},
    {"skip": True, "head_hidden": 20},
    {"batchnorm": False, "residual": True, "gated": True, "kernel_sizes": (2, 2, 2, 2)},
    {"dropout": 0.2, "residual": True, "skip": True, "head_hidden": 12, "kernel_sizes": (3, 2)},
    {"batchnorm": False, "kernel_sizes": (3, 2), "dropout": 0.2},
    {  # the shipped model's options
        "dropout": 0.2,
        "gated": True,
        "residual": True,
        "skip": True,
        "head_hidden": 12,
        "n_embd": 16,
        "kernel_sizes": (2, 2, 2, 2),
    },
]


def option_model(options: dict, seed: int = 0) -> WaveNet:
    base = {"vocab_size": 27, "n_embd": 10, "n_hidden": 16, "kernel_sizes": (2, 2, 2)}
    torch.manual_seed(seed)
    model = WaveNet(WaveNetConfig(**{**base, **options}))
    with torch.no_grad():  # ones and zeros at init would hide BatchNorm's misuse
        for level in model.levels:
            if level.bn is not None:
                level.bn.running_mean.normal_(std=0.3)
                level.bn.running_var.uniform_(0.5, 2.0)
                level.bn.bias.normal_(std=0.3)
    return model.eval()


@pytest.mark.parametrize("options", OPTION_CONFIGS)
def test_pad_vector_equals_explicit_left_padding(options: dict) -> None:
    """Every option keeps the shortcut exact: carrying the pre-name value equals feeding
    receptive_field - 1 boundary tokens before the name."""
    model = option_model(options)
    rf = model.config.receptive_field
    torch.manual_seed(2)
    idx = torch.randint(1, 27, (3, 9))
    idx[:, 0] = 0
    padded = torch.cat([torch.zeros(3, rf - 1, dtype=torch.long), idx], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], model(padded)[0][:, rf - 1 :])


@pytest.mark.parametrize("options", OPTION_CONFIGS)
def test_options_train(options: dict) -> None:
    model = option_model(options).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    idx = torch.randint(0, 27, (16, 10))
    targets = torch.roll(idx, -1, dims=1)
    losses = []
    for _ in range(30):
        _, loss = model(idx, targets)
        assert loss is not None
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3


@pytest.mark.parametrize("options", [{}, *OPTION_CONFIGS])
def test_packed_rows_equal_one_name_per_row(options: dict) -> None:
    """Names laid end to end with their offsets give each name the logits it gets alone,
    and (without dropout) the same training loss: BatchNorm sees the same positions."""
    from model import Vocab
    from training.data import EncodedNames

    names = ["emma", "olivia", "ava", "x", "christopherjohn", "li", "mia", "zoe"]
    vocab = Vocab.from_names(names)
    data = EncodedNames.build(names, vocab)
    rows = torch.arange(len(names))
    x, y, offsets = data.packed_batch(rows, 20)
    assert x.shape[0] < len(names)  # several names share a row
    model = option_model({**options, "dropout": 0.0, "vocab_size": vocab.size})
    alone_x, alone_y = data.batch(rows)
    with torch.no_grad():
        alone, _ = model(alone_x, alone_y)
        packed, _ = model(x, y, offsets=offsets)
        torch.testing.assert_close(packed[y != IGNORE_INDEX], alone[alone_y != IGNORE_INDEX])
        model.train()
        torch.testing.assert_close(model(x, y, offsets=offsets)[1], model(alone_x, alone_y)[1])


def test_dropout_acts_only_while_training() -> None:
    """Dropout changes training outputs, and eval mode is the plain model."""
    options = {"dropout": 0.3, "skip": True, "residual": True, "head_hidden": 12}
    model = option_model(options)
    plain = option_model({**options, "dropout": 0.0})
    plain.load_state_dict(model.state_dict())
    idx = torch.randint(1, 27, (4, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], plain(idx)[0])
        model.train()
        assert not torch.allclose(model(idx)[0], model(idx)[0])
