"""Command-line flags built from the configs' types: one flag per TrainConfig field and per
model field, choices from Literal types, switches from bools, lists from tuples."""

from __future__ import annotations

import argparse
import typing
from dataclasses import fields
from typing import Any, Literal

from model.registry import MODEL_KINDS, ModelConfig
from training.config import TrainConfig

HELP = {
    "corpus": "text file, one name per line; or a CSV (.csv, .csv.gz) with a header: a name "
    "column, label columns (e.g. sex, decade) and an optional count column",
    "out": "checkpoint directory to write (created; the best weights end up here)",
    "model": "wavenet, or lstm (the recurrent baseline of the experiment tables)",
    "vocab": 'the characters names may hold, e.g. "abcdefghijklmnopqrstuvwxyz-\'" (a line '
    "with any other is a bad line, see --on-bad); empty: every character of the corpus",
    "lowercase": "lowercase names while loading",
    "on_bad": "a line with a character outside the vocabulary (or, without --vocab, "
    "anything but letters, inner spaces, hyphens and apostrophes): 'error' (quote it and "
    "stop) or 'skip'",
    "keep_duplicates": "keep repeated names (the lecture does, on names.txt)",
    "split_seed": "seed of the 80/10/10 shuffle split (the lecture's is 42); a labelled "
    "corpus is split by distinct name",
    "direction": "forward reads names left to right; backward trains the same model on "
    "reversed names (same split, same labels), for ends_with and contains once combined "
    "with a forward checkpoint by python -m training.combine",
    "row_weights": "labelled corpora: draw (name, labels) rows uniformly, or in proportion "
    "to log(1 + count)",
    "label_dropout": "labelled corpora: chance that each label of a training row is "
    "replaced by unknown, so the model takes any subset of labels",
    "optimizer": "adamw, or sgd for the lecture's recipe",
    "lr": "peak learning rate",
    "min_lr_ratio": "cosine schedule decays to lr * this",
    "weight_decay": "decoupled weight decay (AdamW) / L2 (SGD) on weight matrices",
    "momentum": "SGD momentum",
    "schedule": "cosine (with warmup), step (lr * decay-factor at each decay step), constant",
    "warmup_steps": "linear warmup steps (cosine and constant schedules)",
    "decay_steps": "steps at which the step schedule multiplies lr by decay-factor",
    "decay_factor": "step schedule's factor",
    "batch_size": "names (or windows) per step, padded to the batch's longest",
    "batch_unit": "names: whole names, every position a prediction; windows: the lecture's "
    "batches, one random (name, position) prediction per row; packed: like names, laid end "
    "to end in rows of 64 positions, no time spent on padding (WaveNet only)",
    "steps": "optimizer steps",
    "time_budget_s": "stop after this many seconds of training (0: no limit); the lr "
    "schedule then follows whichever of steps or time is further along",
    "grad_clip": "clip the gradient norm to this; 0 disables",
    "ema_decay": "evaluate and save an exponential moving average of the weights with this "
    "decay (e.g. 0.999); 0 uses the raw weights",
    "distill_steps": "after training, up to this many steps of dropout distillation: the "
    "best weights, without dropout, learn their own predictions with dropout; 0: none",
    "distill_s": "time cap of distillation in seconds, taken out of time-budget-s; 0: none",
    "distill_lr": "distillation's peak learning rate (cosine to 0)",
    "distill_samples": "dropout predictions averaged into each distillation target",
    "eval_interval": "evaluate on the full validation set every this many steps",
    "patience": "stop after this many evaluations without improvement; 0 disables",
    "diagnostics": "record activation, gradient and update-ratio health into OUT/diagnostics "
    "(JSON lines and PNG plots) and warn on saturation or update ratios far from 1e-3",
    "diagnose_interval": "capture diagnostics every this many steps; 0: at every evaluation",
    "seed": "seed for initialisation and batches: same seed, same run",
    "device": "auto picks cuda, then mps, then cpu",
    "threads": "torch CPU threads; 0 keeps torch's default",
    "progress": "show a progress bar",
}
MODEL_HELP = {
    "n_embd": "character embedding width",
    "n_hidden": "hidden width of every level (LSTM: of every layer)",
    "kernel_sizes": "kernel size per level, e.g. 2 2 2 (lecture's hierarchy) or 8 (flat MLP)",
    "gated": "gated activation units, tanh(filter) * sigmoid(gate) (WaveNet paper)",
    "residual": "residual connections: each level adds its output to its input",
    "skip": "skip connections: the head reads the sum of every level's output",
    "head_hidden": "width of a ReLU hidden layer before the logits; 0 for none",
    "dropout": "dropout on every level's output (LSTM: between layers) while training",
    "batchnorm": "BatchNorm after every convolution",
    "bn_momentum": "BatchNorm's running-statistics momentum",
    "n_layers": "LSTM layers",
}
NOT_FLAGS = {"vocab_size", "label_sizes"}  # set from the corpus's vocabulary and labels


def model_fields() -> dict[str, dict[str, Any]]:
    """Every model field as a flag: {field: {kind: default}} over the kinds that have it."""
    out: dict[str, dict[str, Any]] = {}
    for kind, cls in MODEL_KINDS.items():
        defaults = cls()
        for f in fields(cls):
            if f.name not in NOT_FLAGS:
                out.setdefault(f.name, {})[kind] = getattr(defaults, f.name)
    return out


def flag_options(annotation: Any) -> dict[str, Any]:
    """argparse keywords for a field of this type: Literal gives choices, bool a
    --x/--no-x switch, tuple[T, ...] a list of T."""
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        return {"type": type(choices[0]), "choices": choices}
    if typing.get_origin(annotation) is tuple:
        return {"type": typing.get_args(annotation)[0], "nargs": "*"}
    return {"type": annotation}


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """--model KIND and one flag per model field; a field left out keeps its kind's default."""
    parser.add_argument("--model", choices=list(MODEL_KINDS), default="wavenet", help=HELP["model"])
    group = parser.add_argument_group("model options (defaults depend on --model)")
    hints = {kind: typing.get_type_hints(cls) for kind, cls in MODEL_KINDS.items()}
    for name, defaults in model_fields().items():
        annotation = hints[next(iter(defaults))][name]
        shown = ", ".join(f"{kind} {value}" for kind, value in defaults.items())
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=argparse.SUPPRESS,  # absent: the kind's own default
            help=f"{MODEL_HELP[name]} (default: {shown})",
            **flag_options(annotation),
        )


def model_from_args(args: dict[str, Any]) -> ModelConfig:
    """Pop --model and the model flags out of `args`; a flag the kind lacks is a
    ValueError."""
    kind = args.pop("model")
    cls = MODEL_KINDS[kind]
    own = {f.name for f in fields(cls)}
    options = {name: args.pop(name) for name in model_fields() if name in args}
    foreign = sorted(name for name in options if name not in own)
    if foreign:
        flags = ", ".join("--" + n.replace("_", "-") for n in foreign)
        raise ValueError(f"{flags}: not an option of the {kind} model")
    return cls(**options)


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (the model's through add_model_flags)."""
    defaults = TrainConfig(corpus="", out="")
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "model":
            add_model_flags(parser)
            continue
        default = getattr(defaults, f.name)
        kwargs: dict[str, Any] = {"help": HELP[f.name], "dest": f.name}
        kwargs.update(flag_options(hints[f.name]))
        if f.name in ("corpus", "out"):
            kwargs["required"] = True
        else:
            kwargs["default"] = list(default) if isinstance(default, tuple) else default
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def config_from_args(args: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of parsed flags (run options such as --resume popped beforehand);
    a ValueError names what is wrong."""
    args = dict(args)
    model = model_from_args(args)
    return TrainConfig(model=model, **args)
