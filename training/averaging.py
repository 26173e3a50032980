"""Weight averaging: an exponential moving average of the parameters, evaluated and saved
in place of the raw weights (Polyak averaging; what nanoGPT-style trainers call EMA).

The last steps of SGD bounce around a minimum; their average sits nearer its centre and
usually generalises a little better. BatchNorm's running statistics are already averages,
so buffers are taken from the live model as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be between 0 and 1, got {decay}")
        self.decay = decay
        self.params: list[Tensor] = list(model.parameters())
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        # Early on the average would drag in the random init: warm the decay up.
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own after."""
        with torch.no_grad():
            live = [p.detach().clone() for p in self.params]
            torch._foreach_copy_(self.params, self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, live)

    def state(self) -> dict[str, Tensor]:
        tensors = {f"ema.{i}": t for i, t in enumerate(self.shadow)}
        tensors["ema.updates"] = torch.tensor(self.updates)
        return tensors

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for i, t in enumerate(self.shadow):
                t.copy_(tensors[f"ema.{i}"])
        self.updates = int(tensors["ema.updates"])
