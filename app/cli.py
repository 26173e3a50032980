"""`namegen`: the service's commands on a checkpoint, without a server.

    namegen generate -n 5 --prefix ma --unique     names, as a table
    namegen score emma zyxwv --json                the API's /score answer
    namegen infer - < names.txt                    label posteriors (conditional checkpoints)
    namegen serve --port 8000                      the HTTP service (what `make serve` runs)
    namegen train --corpus names.txt --out run     training (`python -m training`)

Every /generate control is a flag of the same name; `--json` prints exactly the API's
response; a name of `-` reads names from standard input, one a line. Bad input exits with
status 2 and one line. torch is imported only by the commands that run the model, so a
usage error or `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pydantic import BaseModel

    from app.config import Settings
    from model.engine import Engine

PROG = "namegen"


class UsageError(Exception):
    """Bad input: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage and the error
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _scalar(annotation: Any) -> type | None:
    """int, float, str or bool for a field of one of those types (or None allowed)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = (
        [a for a in typing.get_args(annotation) if a is not type(None)] if union else [annotation]
    )
    return kinds[0] if len(kinds) == 1 and kinds[0] in (int, float, str, bool) else None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", metavar="DIR", help="checkpoint directory (default: the shipped one)"
    )
    p.add_argument("--json", action="store_true", help="print the API's response as JSON")


def _labels_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--labels",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help=f"{what} under these labels (a conditional checkpoint's), e.g. sex=F,decade=1950",
    )


def _generate_parser(sub: Any) -> None:
    # One flag per field of the /generate body (model/request.py), named as the field:
    # a control added there is a flag here. Values go to pydantic as given.
    from model.request import GenerateRequest

    p = sub.add_parser("generate", help="generate names", description="Generate names.")
    for name, field in GenerateRequest.model_fields.items():
        kind = _scalar(field.annotation)
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if name == "n":
            flags.insert(0, "-n")
        shown = field.default not in (None, False, "")
        helptext = f"{field.description} (default: {field.default})" if shown else field.description
        if name == "labels":
            _labels_flag(p, "names")
        elif kind is bool:
            p.add_argument(*flags, dest=name, action="store_true", default=None, help=helptext)
        elif kind is not None:
            metavar = {int: "INT", float: "FLOAT", str: "TEXT"}[kind]
            p.add_argument(*flags, dest=name, metavar=metavar, help=helptext)
    _common(p)


def build_parser(command: str | None) -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    if command == "generate":  # its flags come from the request model, which needs torch
        _generate_parser(sub)
    else:
        sub.add_parser("generate", help="generate names (every /generate control a flag)")
    for name, what in (("score", "score names"), ("infer", "infer names' labels")):
        p = sub.add_parser(name, help=what, description=f"{what[0].upper()}{what[1:]}.")
        p.add_argument("names", nargs="+", metavar="NAME", help="a name, or - for stdin")
        if name == "score":
            _labels_flag(p, "score")
        _common(p)
    sub.add_parser("serve", help="serve the HTTP API and the page (python -m app)", add_help=False)
    sub.add_parser("train", help="train a model (python -m training)", add_help=False)
    return parser


def _label_dict(items: Sequence[str]) -> dict[str, str] | None:
    labels = {}
    for item in ",".join(items).split(","):
        if not item.strip():
            continue
        column, sep, value = item.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise UsageError(f"{PROG}: --labels: {item!r} is not COLUMN=VALUE")
        labels[column.strip()] = value.strip()
    return labels or None


def _names(args: Sequence[str]) -> list[str]:
    names: list[str] = []
    for arg in args:
        if arg == "-":
            names += [line.strip() for line in sys.stdin if line.strip()]
        else:
            names.append(arg)
    return names


# checkpoints the keeper (app/keeper.py) holds: directory -> (its files' stamp, engine)
_kept: dict[Path, tuple[list[tuple[str, int, int]], Engine]] = {}


def _stamp(directory: Path) -> list[tuple[str, int, int]]:
    """Name, size and change time of each file: a retrained checkpoint is loaded again."""
    stats = ((p.name, p.stat()) for p in directory.iterdir())
    return sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats)


def load(checkpoint: str | None, keep: bool = False) -> tuple[Engine, Settings]:
    from app.config import Settings
    from model.checkpoint import CheckpointError
    from model.engine import Engine

    settings = Settings() if checkpoint is None else Settings(checkpoint=checkpoint)
    try:
        directory = settings.checkpoint.resolve()
        stamp = _stamp(directory) if keep else []
        if keep and directory in _kept and _kept[directory][0] == stamp:
            return _kept[directory][1], settings
        engine = Engine.load(settings.checkpoint, device="cpu")
    except (CheckpointError, OSError) as e:
        raise UsageError(f"{PROG}: --checkpoint: {e}") from None
    if keep:
        _kept[directory] = (stamp, engine)
    return engine, settings


def _run(args: argparse.Namespace, keep: bool) -> BaseModel:
    from pydantic import ValidationError

    from app import offline

    try:
        if args.command == "generate":
            from model.request import GenerateRequest

            given = {
                k: v
                for k, v in vars(args).items()
                if k in GenerateRequest.model_fields and k != "labels" and v is not None
            }
            try:
                req = GenerateRequest.model_validate({**given, "labels": _label_dict(args.labels)})
            except ValidationError as e:
                raise offline.Refused(offline.validation_problems(e)) from None
            engine, settings = load(args.checkpoint, keep)
            return offline.generate(engine, settings, req)
        names = _names(args.names)
        engine, settings = load(args.checkpoint, keep)
        if args.command == "score":
            return offline.score(engine, settings, names, _label_dict(args.labels))
        return offline.infer(engine, settings, names)
    except offline.Refused as e:
        raise UsageError(f"{PROG} {args.command}: {e}") from None


def console() -> int:
    """The `namegen` command: answered by a warm keeper when one runs (app/keeper.py),
    else here, leaving one behind for the next command."""
    from app import keeper

    argv = sys.argv[1:]
    code = keeper.ask(argv)
    if code is None:
        code = main(argv)
        if code == 0:
            keeper.start(argv)
    return code


def main(argv: Sequence[str] | None = None, keep_loaded: bool = False) -> int:
    """Run one command; `keep_loaded` holds its checkpoint for the next (the keeper's)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    try:
        if command in ("serve", "train"):
            return _delegate(command, argv[1:])
        args = build_parser(command).parse_args(argv)
        if args.command is None:
            build_parser(None).print_help()
            return 2
        out = _run(args, keep_loaded)
    except UsageError as e:
        print(str(e).splitlines()[0], file=sys.stderr)
        return 2
    if args.json:
        print(out.model_dump_json())
    else:
        from app import cli_tables

        print(cli_tables.table(args.command, out))
    return 0


def _delegate(command: str, rest: list[str]) -> int:
    if command == "train":
        from training.__main__ import main as train_main

        return train_main(rest)
    # `namegen serve --checkpoint DIR` is NAMEGEN_CHECKPOINT=DIR for this process
    for i, arg in enumerate(rest):
        if arg == "--checkpoint" or arg.startswith("--checkpoint="):
            value = arg.partition("=")[2] or (rest[i + 1] if i + 1 < len(rest) else "")
            if not value:
                raise UsageError(f"{PROG} serve: --checkpoint needs a directory")
            os.environ["NAMEGEN_CHECKPOINT"] = value
            rest = rest[:i] + rest[i + (1 if "=" in arg else 2) :]
            break
    from app.__main__ import main as serve_main

    return serve_main(rest)


if __name__ == "__main__":
    raise SystemExit(console())
