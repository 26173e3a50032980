"""The sampling controls of a batch's rows (temperature, top-k, top-p, greedy) and the
choice of each row's next id under them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.request import GenerateRequest


@dataclass(frozen=True)
class Controls:
    """The controls of the rows of one step (B,), and what every row shares (to skip work
    no row needs)."""

    temperature: Tensor
    top_k: Tensor
    top_p: Tensor
    unit_temperature: bool  # every row's temperature is 0 or 1
    filtered: bool  # some row has top_k or top_p
    any_greedy: bool  # some row has temperature 0

    @property
    def greedy(self) -> Tensor:
        # Greedy where the float32 temperature is 0: that includes temperatures too small
        # for float32 (below about 1e-45), whose limit greedy is.
        return self.temperature == 0

    @classmethod
    def of(cls, request: GenerateRequest, rows: int, vocab_size: int) -> Controls:
        def column(value: float, dtype: torch.dtype) -> Tensor:
            return torch.full((rows,), value, dtype=dtype)

        temperature = column(request.temperature, torch.float32)
        return cls(
            temperature,
            column(request.top_k or vocab_size, torch.long),
            column(request.top_p if request.top_p is not None else 1.0, torch.float32),
            request.temperature in (0, 1),
            request.top_k is not None or request.top_p is not None,
            bool((temperature == 0).any()),
        )


def filter_rows(logits: Tensor, rows: Controls) -> Tensor:
    """Temperature, top-k then top-p, per row, on logits (B, V); removed ids get -inf."""
    if not rows.unit_temperature:
        # Shift each row's top logit to 0 first: a tiny temperature (say 1e-40) then sends
        # the rest to -inf, which is the greedy limit, instead of inf - inf = NaN.
        logits = logits - logits.amax(dim=-1, keepdim=True)
        logits = logits / torch.where(rows.greedy, 1.0, rows.temperature)[:, None]
    if not rows.filtered:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    ranks = torch.arange(logits.shape[-1], device=logits.device)
    sorted_logits = sorted_logits.masked_fill(ranks >= rows.top_k[:, None], float("-inf"))
    probs = F.softmax(sorted_logits, dim=-1)
    # drop an id when the ids before it already reach top_p; the likeliest always stays,
    # even for a top_p that is 0 in float32 (1e-46 was, and removed every id)
    # (rows without top_p skip this: rounding can make the cumulative mass reach 1 early)
    drop = (probs.cumsum(dim=-1) - probs >= rows.top_p[:, None]) & (rows.top_p[:, None] < 1)
    drop[:, 0] = False
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


def filter_logits(logits: Tensor, request: GenerateRequest) -> Tensor:
    """filter_rows for a batch whose rows all share the controls of `request`."""
    return filter_rows(logits, Controls.of(request, logits.shape[0], logits.shape[-1]))


def choose(logits: Tensor, uniform: Tensor, rows: Controls) -> Tensor:
    """Pick one id per row: argmax where the temperature is 0, else inverse-CDF sampling
    with `uniform`."""
    cdf = F.softmax(filter_rows(logits, rows), dim=-1).cumsum_(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze_(-1)  # (B, 1)
    # right=True: the first id whose cumulative mass exceeds the target, so ids of
    # zero probability are never picked
    picked = torch.searchsorted(cdf, target, right=True).squeeze_(-1)
    picked = picked.clamp_(max=logits.shape[-1] - 1)
    if not rows.any_greedy:
        return picked
    return torch.where(rows.greedy, logits.argmax(dim=-1), picked)
