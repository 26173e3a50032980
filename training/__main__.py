"""`python -m training`: train a WaveNet on a one-name-per-line corpus into a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Any

from training.config import TrainConfig
from training.corpus import CorpusError
from training.trainer import train

CHOICES = {
    "model": ["wavenet", "lstm"],
    "batch_unit": ["names", "windows", "packed"],
    "dropout_mask": ["position", "name"],
    "dropout_path": ["both", "split"],
    "optimizer": ["adamw", "sgd"],
    "on_bad": ["error", "skip"],
    "schedule": ["cosine", "step", "constant"],
    "device": ["auto", "cpu", "cuda", "mps"],
    "distill_target": ["ensemble", "ends"],
}
FLOAT_LISTS = {"level_dropout"}  # the other list options are of ints
HELP = {
    "corpus": "text file, one name per line",
    "out": "checkpoint directory to write (created; the best weights end up here)",
    "model": "wavenet, or lstm (the recurrent baseline of the experiment tables)",
    "n_embd": "character embedding width",
    "n_hidden": "hidden width of every level",
    "kernel_sizes": "kernel size per level, e.g. 2 2 2 (lecture's hierarchy) or 8 (flat MLP)",
    "dilations": "dilation per level, e.g. 1 2 4 with kernels 3 3 3 (overlapping windows, "
    "as in the TCN paper); default: the lecture's tree, each the product of the kernels below",
    "stacks": "repeat the kernel pattern this many times (dilations restart each time)",
    "gated": "gated activation units, tanh(filter) * sigmoid(gate) (WaveNet paper)",
    "residual": "residual connections: each level adds its output to its input",
    "skip": "skip connections: the head reads the sum of every level's output",
    "head_hidden": "width of a ReLU hidden layer before the logits; 0 for none",
    "dropout": "dropout on every level's output (LSTM: between layers) while training",
    "level_dropout": "one dropout rate per level instead of --dropout at every level, "
    "e.g. 0.45 0.4 0.3 0.2 (WaveNet)",
    "dropout_mask": "position: a fresh dropout mask at every position; name: one mask per "
    "name, shared by its positions (variational dropout; WaveNet)",
    "name_dropout": "a second dropout on every level's output, one mask per name at this "
    "rate, on top of --dropout's (WaveNet)",
    "dropout_path": "both: dropped level outputs feed the residual stream and the skip sum "
    "(one mask); split: the skip sum gets dropout, the residual stream residual-dropout "
    "(WaveNet)",
    "residual_dropout": "dropout on the residual stream with dropout-path split; 0: clean",
    "input_dropout": "dropout on the character embeddings while training (WaveNet)",
    "head_dropout": "dropout on the head's hidden layer (or its input) while training (WaveNet)",
    "max_positions": "learned embedding of each character's position in its name, for "
    "positions up to this (later ones share the last); 0 for none (WaveNet)",
    "head_positions": "the same, added to what the head reads (the skip sum), so the "
    "end-of-name decision sees the length directly; 0 for none (WaveNet)",
    "batchnorm": "BatchNorm after every convolution",
    "layernorm": "LayerNorm after every convolution instead (with --no-batchnorm): each "
    "position normalized over its own channels, the same in training and serving (WaveNet)",
    "n_layers": "LSTM layers",
    "lowercase": "lowercase names while loading",
    "on_bad": "a line with a character outside a-z: 'error' (quote it and stop) or 'skip'",
    "keep_duplicates": "keep repeated names (the lecture does, on names.txt)",
    "split_seed": "seed of the 80/10/10 shuffle split (the lecture's is 42)",
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
    "consistency": "R-Drop: each batch twice, plus this weight times the symmetric KL between "
    "the two dropout samples' predictions (about 2x the step cost); 0: off",
    "ema_decay": "evaluate and save an exponential moving average of the weights with this "
    "decay (e.g. 0.999); 0 uses the raw weights",
    "distill_steps": "after training, up to this many steps of dropout distillation: the "
    "best weights, without dropout, learn their own predictions with dropout; 0: none",
    "distill_s": "time cap of distillation in seconds, taken out of time-budget-s; 0: none",
    "distill_lr": "distillation's peak learning rate (cosine to 0)",
    "distill_samples": "dropout predictions averaged into each distillation target",
    "distill_truth": "weight of the true next character, mixed into each distillation "
    "target (knowledge distillation's usual mix); 0: the dropout ensemble alone",
    "distill_target": "ensemble: learn the dropout ensemble's prediction; ends: only its "
    "P(end), with the characters in the deterministic teacher's proportions",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a character-level WaveNet on a corpus of names. Writes a "
        "checkpoint directory (safetensors + meta.json); OUT/last holds resumable state "
        "while the run is going.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = TrainConfig(corpus="", out="")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kwargs: dict[str, Any] = {"help": HELP[f.name], "dest": f.name}
        if f.name in ("corpus", "out"):
            kwargs["required"] = True
        elif isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["default"] = default
        elif isinstance(default, tuple):
            element = float if f.name in FLOAT_LISTS else int
            kwargs.update(nargs="*", type=element, default=list(default))
        else:
            kwargs.update(type=type(default), default=default)
        if f.name in CHOICES:
            kwargs["choices"] = CHOICES[f.name]
        parser.add_argument(flag, **kwargs)
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from OUT/last"
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="a short health check: 300 steps (unless --steps is given), diagnostics every "
        "10 steps, evaluation every 100; look at OUT/diagnostics/*.png afterwards",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume = args.pop("resume")
    if args.pop("diagnose"):
        explicit_steps = any(
            a == "--steps" or a.startswith("--steps=") for a in (argv or sys.argv[1:])
        )
        args.update(diagnostics=True, diagnose_interval=10, eval_interval=100)
        if not explicit_steps:
            args["steps"] = 300
    try:
        cfg = TrainConfig(**args)
        result = train(cfg, resume=resume)
    except (CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"checkpoint": str(result.out), **result.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
