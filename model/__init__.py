"""namegen's model: a character-level WaveNet, its vocabulary and checkpoints."""

from model.vocab import BOUNDARY, UnknownCharacterError, Vocab
from model.wavenet import IGNORE_INDEX, WaveNet, WaveNetConfig

__all__ = ["BOUNDARY", "IGNORE_INDEX", "UnknownCharacterError", "Vocab", "WaveNet", "WaveNetConfig"]
