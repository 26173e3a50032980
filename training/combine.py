"""One checkpoint holding a forward and a backward network, from a checkpoint of each.

    python -m training.combine --forward DIR --backward DIR --out DIR [--force]

The backward checkpoint comes from `python -m training ... --direction backward` on the
same corpus, with the same split seed and vocabulary: the two must agree on the
vocabulary, the label columns and the corpus, or nothing is written. The forward
checkpoint's meta.json becomes the top level (its label space and calibration serve
both); the backward network is described under `backward` (model/checkpoint.py's
layout), with its own metrics and training command; `combined` records this command.

OUT is written whole in a temporary directory beside it, loaded back and checked, then
renamed into place, so it is never half-written. With --force an existing OUT is
replaced: renamed aside, the new one renamed in, the old one removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_meta
from model.payloads import META, entry_of, fsync_dir, fsync_write, read_payload
from model.wavenet import WaveNet

BACKWARD_KEYS = ("model_kind", "model_config", "num_params", "metrics", "training", "corpus")


class CombineError(ValueError):
    """The two checkpoints cannot be combined, or OUT cannot be written."""


def _columns(checkpoint: Checkpoint) -> list[tuple[str, tuple[str, ...], bool]]:
    space = checkpoint.labels
    return [] if space is None else [(c.name, c.values, c.ordinal) for c in space.columns]


def check_pair(forward: Checkpoint, backward: Checkpoint) -> None:
    """Raises CombineError saying what differs between the two."""
    for checkpoint, direction in ((forward, "forward"), (backward, "backward")):
        if checkpoint.backward is not None:
            raise CombineError(f"--{direction} {checkpoint.path} holds two networks already")
        if checkpoint.direction != direction:
            raise CombineError(
                f"--{direction} {checkpoint.path} holds a {checkpoint.direction} network "
                f"(train one with --direction {direction})"
            )
        if not isinstance(checkpoint.model, WaveNet):
            raise CombineError(f"--{direction} {checkpoint.path} is not a WaveNet")
    if forward.vocab != backward.vocab:
        raise CombineError(
            f"the vocabularies differ: forward {''.join(forward.vocab.chars)!r}, "
            f"backward {''.join(backward.vocab.chars)!r}"
        )
    if _columns(forward) != _columns(backward):
        raise CombineError(
            f"the label spaces differ: forward {_columns(forward) or 'none'}, "
            f"backward {_columns(backward) or 'none'}"
        )
    for key in ("sha256", "names"):
        a = forward.meta.get("corpus", {}).get(key)
        b = backward.meta.get("corpus", {}).get(key)
        if a != b:
            raise CombineError(
                f"the corpora differ: corpus {key} {a!r} (forward), {b!r} (backward)"
            )
    if forward.meta.get("split") != backward.meta.get("split"):
        raise CombineError(
            f"the splits differ: forward {forward.meta.get('split')}, "
            f"backward {backward.meta.get('split')}"
        )
    if forward.corpus_names != backward.corpus_names:
        raise CombineError("the corpus names differ")


def combined_meta(
    forward: Checkpoint, backward: Checkpoint, backward_file: dict[str, str], command: str
) -> dict[str, Any]:
    meta = {k: v for k, v in forward.meta.items() if k != "files"}
    files = forward.meta["files"]
    meta["files"] = {"model": files["model"], "corpus": files["corpus"]}  # no train_state
    meta["direction"] = "forward"
    second = {k: backward.meta[k] for k in BACKWARD_KEYS if k in backward.meta}
    meta["backward"] = {**second, "file": backward_file, "split": backward.meta.get("split")}
    meta["combined"] = {
        "command": command,
        "forward": str(forward.path),
        "backward": str(backward.path),
    }
    return meta


def write_combined(
    forward_dir: Path, backward_dir: Path, out: Path, *, force: bool, command: str
) -> None:
    """Check both checkpoints, write OUT (see the module docstring); raises CombineError
    or CheckpointError."""
    forward, backward = load_checkpoint(forward_dir), load_checkpoint(backward_dir)
    check_pair(forward, backward)
    if out.exists() and not force:
        raise CombineError(f"--out {out} exists: choose another directory, or --force")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; checkpoints are read by other users
        files = forward.meta["files"]
        for kind in ("model", "corpus"):
            data = read_payload(forward.path, files[kind], f"{kind} file")
            fsync_write(tmp / files[kind]["path"], data)
        data = read_payload(backward.path, backward.meta["files"]["model"], "model file")
        entry = entry_of("backward", ".safetensors", data)
        fsync_write(tmp / entry["path"], data)
        meta = combined_meta(forward, backward, entry, command)
        fsync_write(tmp / META, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
        fsync_dir(tmp)
        read_meta(tmp)
        load_checkpoint(tmp)  # whole and consistent before it takes OUT's place
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.rename(out, old / out.name)
        os.rename(tmp, out)
        fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.combine",
        description="Write one checkpoint holding a forward and a backward network (the "
        "backward one trained with --direction backward on the same corpus and split).",
    )
    parser.add_argument("--forward", type=Path, required=True, help="a forward checkpoint")
    parser.add_argument("--backward", type=Path, required=True, help="a backward checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="the checkpoint to write")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m training.combine " + shlex.join(given)
    try:
        write_combined(args.forward, args.backward, args.out, force=args.force, command=command)
    except (CombineError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"checkpoint": str(args.out), "directions": ["forward", "backward"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
