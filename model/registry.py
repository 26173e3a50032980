"""Model kinds: the one place that maps a kind's name to its config and its module.

A checkpoint records its kind ("wavenet" or "lstm") beside the config's dict; everything
that builds a model from a name or a dict goes through here.
"""

from __future__ import annotations

from typing import Any

from model.lstm import CharLSTM, LSTMConfig
from model.wavenet import WaveNet, WaveNetConfig

ModelConfig = WaveNetConfig | LSTMConfig
LanguageModel = WaveNet | CharLSTM

MODEL_KINDS: dict[str, type[WaveNetConfig] | type[LSTMConfig]] = {
    "wavenet": WaveNetConfig,
    "lstm": LSTMConfig,
}


def kind_of(config: ModelConfig) -> str:
    """The kind's name of a config (or of a model's `.config`)."""
    return "lstm" if isinstance(config, LSTMConfig) else "wavenet"


def label_sizes(config: ModelConfig) -> tuple[int, ...]:
    """The label columns' sizes of a conditional model; () for any other."""
    return config.label_sizes if isinstance(config, WaveNetConfig) else ()


def config_from_dict(kind: str, d: dict[str, Any]) -> ModelConfig:
    """Raises ValueError for an unknown kind or unknown keys, TypeError or ValueError for
    bad values."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}, expected one of {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[kind].from_dict(d)


def build_model(config: ModelConfig) -> LanguageModel:
    """A freshly initialized model of the config's kind."""
    if isinstance(config, LSTMConfig):
        return CharLSTM(config)
    return WaveNet(config)
