"""R-Drop: train two dropout samples of the model to agree (Liang et al., NeurIPS 2021).

Each batch goes through the model twice, as one batch of twice the rows, so every
position gets two independent dropout masks. The loss is the cross-entropy of both
copies plus `weight` times the symmetric KL divergence between their predictions. It
regularizes what the model predicts, not only its weights, and narrows the spread of the
dropout samples. It does not by itself bring the deterministic model (dropout off, as
it is served) to the samples' average, which dropout distillation (training/distill.py)
does after training; the two can be combined.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from model.checkpoint import LanguageModel
from training.data import Batch, forward


def doubled(batch: Batch) -> Batch:
    """The batch followed by a copy of itself (rows 0..B-1 and B..2B-1 are the same)."""
    x, y, offsets = batch
    return (
        torch.cat([x, x]),
        torch.cat([y, y]),
        None if offsets is None else torch.cat([offsets, offsets]),
    )


def rdrop_loss(model: LanguageModel, batch: Batch, weight: float) -> tuple[Tensor, Tensor]:
    """(loss to minimise, the plain cross-entropy in it) for one batch, in training mode."""
    rows = batch[0].shape[0]
    logits, cross_entropy = forward(model, doubled(batch))  # (2B, T, V)
    assert cross_entropy is not None
    has_target = batch[1] >= 0  # (B, T)
    first = F.log_softmax(logits[:rows][has_target], dim=-1)  # (N, V)
    second = F.log_softmax(logits[rows:][has_target], dim=-1)  # (N, V)
    # kl_div(a, b) is KL(b || a); 'batchmean' averages over the N predictions
    kl = 0.5 * (
        F.kl_div(first, second, reduction="batchmean", log_target=True)
        + F.kl_div(second, first, reduction="batchmean", log_target=True)
    )
    return cross_entropy + weight * kl, cross_entropy
