"""A character-level LSTM: the recurrent baseline the experiment tables compare against.

Same interface as WaveNet: forward(idx (B, T), targets=None) -> (logits (B, T, V), loss).
Trained and checkpointed like the WaveNet; the service serves WaveNets only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from model.wavenet import IGNORE_INDEX


@dataclass
class LSTMConfig:
    vocab_size: int = 27
    n_embd: int = 64
    n_hidden: int = 256
    n_layers: int = 2
    dropout: float = 0.25  # between layers and before the output layer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LSTMConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown LSTM config keys: {sorted(unknown)}")
        return cls(**d)


class CharLSTM(nn.Module):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(
            config.n_embd,
            config.n_hidden,
            num_layers=config.n_layers,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.n_hidden, config.vocab_size)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        x, _ = self.lstm(self.wte(idx))  # (B, T, H)
        logits = self.lm_head(self.drop(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
            )
        return logits, loss
