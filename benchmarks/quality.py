"""Quality and training speed against the makemore part-5 lecture, in one run.

On ../shared/data/names.txt with the lecture split (random.seed(42), shuffle, 80/10/10):
1. trains namegen's default configuration through `training.train` and reports
   parameters, train/val/test loss and wall time;
2. trains the lecture's recipe, written here independently in the lecture's own style
   (plain tensors, FlattenConsecutive tree, 200,000 SGD steps of 32 windows, lr 0.1 then
   0.01 after 150,000) and reports its losses and wall time;
3. prints the wall-time ratio.

Wall times cover the training loops only (data preparation excluded on both sides; our
side includes its periodic validation and checkpoint writes).

--quick runs 1/20 of both (10,000 recipe steps, 1/20 of our steps, schedules scaled
alike): losses are then far from converged, but the time ratio is still measured.

    python benchmarks/quality.py [--quick] [--fraction F]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Replace this folder on the path with the repo root: benchmarks/http.py would otherwise
# shadow the standard library's http module.
REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import dataclasses
import tempfile
import time

import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.corpus import load_corpus
from training.data import split_names
from training.trainer import train

NAMES = REPO.parent / "shared" / "data" / "names.txt"

# namegen's default configuration (the same as TrainConfig's defaults).
DEFAULT = TrainConfig(corpus=str(NAMES), out="", keep_duplicates=True, progress=False)


# -- the lecture's recipe, as the lecture writes it ---------------------------------------
class Linear:
    def __init__(self, fan_in: int, fan_out: int, bias: bool = True) -> None:
        self.weight = torch.randn((fan_in, fan_out)) / fan_in**0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight] + ([] if self.bias is None else [self.bias])


class BatchNorm1d:
    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.eps, self.momentum, self.training = eps, momentum, True
        self.gamma, self.beta = torch.ones(dim), torch.zeros(dim)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            dim = 0 if x.ndim == 2 else (0, 1)
            xmean, xvar = x.mean(dim, keepdim=True), x.var(dim, keepdim=True)
        else:
            xmean, xvar = self.running_mean, self.running_var
        self.out = self.gamma * (x - xmean) / torch.sqrt(xvar + self.eps) + self.beta
        if self.training:
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * xmean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * xvar
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.gamma, self.beta]


class Tanh:
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def parameters(self) -> list[torch.Tensor]:
        return []


class Embedding:
    def __init__(self, num: int, dim: int) -> None:
        self.weight = torch.randn((num, dim))

    def __call__(self, ix: torch.Tensor) -> torch.Tensor:
        return self.weight[ix]

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight]


class FlattenConsecutive:
    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        return x.squeeze(1) if x.shape[1] == 1 else x

    def parameters(self) -> list[torch.Tensor]:
        return []


class Sequential:
    def __init__(self, layers: list) -> None:
        self.layers = layers

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[torch.Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]


def build_windows(words: list[str], stoi: dict[str, int], block: int = 8):
    X, Y = [], []
    for w in words:
        context = [0] * block
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def lecture_recipe(train_w, val_w, test_w, fraction: float) -> dict[str, float]:
    chars = sorted(set("".join(train_w + val_w + test_w)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    vocab_size, n_embd, n_hidden = len(stoi), 24, 128
    Xtr, Ytr = build_windows(train_w, stoi)
    splits = {
        "train": (Xtr, Ytr),
        "val": build_windows(val_w, stoi),
        "test": build_windows(test_w, stoi),
    }

    torch.manual_seed(42)
    model = Sequential(
        [
            Embedding(vocab_size, n_embd),
            FlattenConsecutive(2),
            Linear(n_embd * 2, n_hidden, bias=False),
            BatchNorm1d(n_hidden),
            Tanh(),
            FlattenConsecutive(2),
            Linear(n_hidden * 2, n_hidden, bias=False),
            BatchNorm1d(n_hidden),
            Tanh(),
            FlattenConsecutive(2),
            Linear(n_hidden * 2, n_hidden, bias=False),
            BatchNorm1d(n_hidden),
            Tanh(),
            Linear(n_hidden, vocab_size),
        ]
    )
    with torch.no_grad():
        model.layers[-1].weight *= 0.1
    parameters = model.parameters()
    for p in parameters:
        p.requires_grad = True

    max_steps, decay_at = int(200_000 * fraction), int(150_000 * fraction)
    started = time.perf_counter()
    for i in range(max_steps):
        ix = torch.randint(0, Xtr.shape[0], (32,))
        logits = model(Xtr[ix])
        loss = F.cross_entropy(logits, Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < decay_at else 0.01
        for p in parameters:
            p.data += -lr * p.grad
    seconds = time.perf_counter() - started

    for layer in model.layers:
        layer.training = False
    result = {"params": sum(p.nelement() for p in parameters), "seconds": seconds}
    with torch.no_grad():
        for name, (x, y) in splits.items():
            result[name] = F.cross_entropy(model(x), y).item()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run 1/20 of both trainings")
    parser.add_argument("--fraction", type=float, default=None, help="run this share of both")
    parser.add_argument("--corpus", type=Path, default=NAMES)
    args = parser.parse_args()
    fraction = args.fraction or (0.05 if args.quick else 1.0)

    names = load_corpus(args.corpus, keep_duplicates=True).names  # the lecture keeps repeats
    train_w, val_w, test_w = split_names(names, seed=42)
    print(
        f"corpus {args.corpus}: {len(names)} names, split {len(train_w)}/{len(val_w)}/"
        f"{len(test_w)}, fraction {fraction}, torch threads {torch.get_num_threads()}",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        steps = max(1, round(DEFAULT.steps * fraction))
        cfg = dataclasses.replace(
            DEFAULT,
            corpus=str(args.corpus),
            out=tmp,
            steps=steps,
            warmup_steps=min(DEFAULT.warmup_steps, steps),
            eval_interval=min(DEFAULT.eval_interval, steps),
        )
        ours = train(cfg).metrics
    print(
        f"namegen default: params={ours['num_params']} train={ours['train_loss']:.4f} "
        f"val={ours['val_loss']:.4f} test={ours['test_loss']:.4f} "
        f"seconds={ours['wall_time_s']:.1f} ({steps} steps of {cfg.batch_size} names)",
        flush=True,
    )

    recipe = lecture_recipe(train_w, val_w, test_w, fraction)
    print(
        f"lecture recipe:  params={recipe['params']} train={recipe['train']:.4f} "
        f"val={recipe['val']:.4f} test={recipe['test']:.4f} seconds={recipe['seconds']:.1f} "
        f"({int(200_000 * fraction)} steps of 32 windows)",
        flush=True,
    )

    speedup = recipe["seconds"] / ours["wall_time_s"]
    print(
        f"quality: params={ours['num_params']} val={ours['val_loss']:.4f} "
        f"test={ours['test_loss']:.4f} seconds={ours['wall_time_s']:.2f} "
        f"recipe_seconds={recipe['seconds']:.2f} speedup={speedup:.2f}x"
    )


if __name__ == "__main__":
    main()
