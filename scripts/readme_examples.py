"""Keep the docs' examples and tables true: every example output in README.md and docs/*.md
is what the real server answers, every generated table what the code says.

Two kinds of blocks, each between HTML comment markers (invisible on GitHub):

    <!-- example -->
    ```console
    $ curl -s http://127.0.0.1:8000/generate -H 'content-type: application/json' \\
        -d '{"n": 5, "seed": 42}'
    ```
    ```json
    (the response, written by this script)
    ```
    <!-- /example -->

The first fenced block is the request: one `curl` command (-X, -H, -d as curl reads them;
the host and port are replaced by the server's). Everything after it, up to the closing
marker, is the response: JSON laid out one item a line where a line allows, numbers to 6
significant digits (which also keeps the check steady across CPUs); any other body as
text. `<!-- example fields: a b -->` shows only those top-level fields of a JSON answer
(for answers too long to show whole, such as /model's). A /generate example needs a
"seed", or it could not repeat.

    <!-- table settings [field ...] -->   the NAMEGEN_* settings (app/config.py), all or some
    <!-- table request /generate -->      a request body's fields, from the OpenAPI schema
    <!-- table metrics -->                 the Prometheus metrics (app/metrics.py)
    <!-- /table -->

By default the script checks: it starts the service on the shipped checkpoint
(app.local_server.LocalServer), renders every block and exits 1 with a diff when any
differs. `--write` rewrites the blocks instead (after a change that moves the outputs).

    python scripts/readme_examples.py [--write] [--base URL] [FILE ...]
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
WIDTH = 96  # longest rendered line, indentation included
FIX = "run `python scripts/readme_examples.py --write` and review the diff"

EXAMPLE = re.compile(r"(<!-- example( fields: [^>]*?)? -->\n)(.*?)(<!-- /example -->)", re.S)
TABLE = re.compile(r"(<!-- table ([^>]*?) -->\n)(.*?)(<!-- /table -->)", re.S)
FENCE = re.compile(r"```[^\n]*\n(.*?)```\n", re.S)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


def parse_curl(command: str) -> Request:
    """The request a console block's `curl` command sends (the options curl users write
    for an API: -s, -X, -H, -d)."""
    lines = [line.removeprefix("$ ") for line in command.strip().splitlines()]
    argv = shlex.split(" ".join(line.rstrip().removesuffix("\\") for line in lines))
    if not argv or argv[0] != "curl":
        raise ValueError(f"an example's request must be one curl command, got: {command!r}")
    method, url, headers, body = None, None, {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-s", "--silent", "-S", "--show-error"):
            continue
        if arg in ("-X", "--request"):
            method = next(args)
        elif arg in ("-H", "--header"):
            name, _, value = next(args).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw"):
            body = next(args)
        elif arg.startswith("-"):
            raise ValueError(f"curl option {arg} is not understood by this script")
        else:
            url = arg
    if url is None:
        raise ValueError(f"no URL in {command!r}")
    if body is not None:  # as curl does with -d
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    parts = urlsplit(url if "://" in url else f"http://{url}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return Request(method or ("POST" if body is not None else "GET"), path, headers, body)


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def layout(value: Any, indent: int = 0, used: int = 0) -> str:
    """JSON that stays on one line when it fits in WIDTH (`used` columns of the first line
    are taken); else one member a line, except that short scalar members, and the items of
    a list of short items, share lines like words in a paragraph."""
    flat = json.dumps(value, ensure_ascii=False)
    if max(indent, used) + len(flat) <= WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = " " * (indent + 2)
    parts: list[tuple[str, bool]] = []  # (text, may share its line)
    if isinstance(value, dict):
        for k, v in value.items():
            key = f"{json.dumps(k)}: "
            text = key + layout(v, indent + 2, indent + 2 + len(key))
            parts.append((text, not isinstance(v, dict | list) and "\n" not in text))
        brackets = "{}"
    else:
        items = [json.dumps(v, ensure_ascii=False) for v in value]
        short = max(len(item) for item in items) <= (WIDTH - indent) // 2
        parts = (
            [(item, True) for item in items]
            if short
            else [(layout(v, indent + 2), False) for v in value]
        )
        brackets = "[]"
    lines: list[str] = []
    shared = False  # whether the last line may take more parts
    for text, share in parts:
        if lines and shared and share and len(inner) + len(lines[-1]) + len(text) + 3 <= WIDTH:
            lines[-1] += ", " + text
        else:
            lines.append(text)
        shared = share
    body = ",\n".join(inner + line for line in lines)
    return f"{brackets[0]}\n{body}\n{' ' * indent}{brackets[1]}"


def render_response(content_type: str, text: str) -> str:
    if content_type.startswith("application/json"):
        return f"```json\n{layout(rounded(json.loads(text)))}\n```\n"
    return f"```text\n{text.rstrip()}\n```\n"


def run_example(
    block: str, send: Callable[[Request], tuple[str, str]], fields: list[str] | None = None
) -> str:
    """An example block with its response block rewritten from the server's answer (only
    the top-level `fields` of a JSON answer, when given)."""
    first = FENCE.search(block)
    if first is None:
        raise ValueError(f"an example has no request block: {block[:80]!r}")
    request = parse_curl(first.group(1))
    if request.path.startswith("/generate") and '"seed"' not in (request.body or ""):
        raise ValueError(f"a /generate example needs a seed to repeat: {first.group(1)!r}")
    content_type, text = send(request)
    if fields:
        answer = json.loads(text)
        text = json.dumps({name: answer[name] for name in fields if name in answer})
        missing = [name for name in fields if name not in answer]
        if missing:
            raise ValueError(f"{request.path} answered without {missing}")
    return block[: first.end()] + render_response(content_type, text)


def shown(value: Any) -> str:
    """A default or a limit as the docs write it."""
    if value in ([], None, ""):
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value.relative_to(REPO) if value.is_relative_to(REPO) else value}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"`{value:,}`" if value < 10**15 else f"`{value:.3g}`"
    return f"`{json.dumps(value) if isinstance(value, str) and value.strip() != value else value}`"


def settings_table(names: list[str]) -> str:
    from app.config import Settings

    unknown = set(names) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"settings table names unknown settings: {sorted(unknown)}")
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        if names and name not in names:
            continue
        meaning = info.description or ""
        if get_origin(info.annotation) is Literal:
            choices = ", ".join(f"`{c}`" for c in get_args(info.annotation))
            meaning = f"{meaning}; one of {choices}" if meaning else f"one of {choices}"
        default = shown(info.get_default(call_default_factory=True))
        rows.append(f"| `NAMEGEN_{name.upper()}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


LIMITS = {
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
    "minLength": "length >=",
    "maxLength": "length <=",
    "minItems": "items >=",
    "maxItems": "items <=",
}


def request_table(schema: dict[str, Any], path: str) -> str:
    """The fields of `path`'s JSON request body, as the OpenAPI schema gives them."""
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    model = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    required = set(model.get("required", []))
    rows = ["| field | type | default | limits | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, prop in model["properties"].items():
        options = prop.get("anyOf", [prop])
        types = " or ".join(o.get("type", "object") for o in options)
        limits = [
            f"{sign} {shown(o[key]).strip('`')}"
            for o in options
            for key, sign in LIMITS.items()
            if key in o
        ]
        default = "required" if name in required else shown(prop.get("default"))
        meaning = prop.get("description", "")
        rows.append(f"| `{name}` | {types} | {default} | {', '.join(limits)} | {meaning} |")
    return "\n".join(rows) + "\n"


def metrics_table() -> str:
    """The Prometheus metrics the service exports (app/metrics.py), as scraped."""
    from app.metrics import Metrics

    rows = ["| metric | type | meaning |", "| --- | --- | --- |"]
    for metric in Metrics().registry.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        rows.append(f"| `{name}` | {metric.type} | {metric.documentation} |")
    return "\n".join(rows) + "\n"


def make_table(spec: str, openapi: Callable[[], dict[str, Any]]) -> str:
    kind, *args = spec.split()
    if kind == "settings":
        return settings_table(args)
    if kind == "metrics" and not args:
        return metrics_table()
    if kind == "request" and len(args) == 1:
        return request_table(openapi(), args[0])
    raise ValueError(f"unknown table {spec!r}")


def refresh(
    text: str, send: Callable[[Request], tuple[str, str]], openapi: Callable[[], dict[str, Any]]
) -> str:
    def example(m: re.Match[str]) -> str:
        fields = m.group(2).removeprefix(" fields:").split() if m.group(2) else None
        return m.group(1) + run_example(m.group(3), send, fields) + m.group(4)

    text = EXAMPLE.sub(example, text)
    return TABLE.sub(lambda m: m.group(1) + make_table(m.group(2), openapi) + m.group(4), text)


def default_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def check_files(files: list[Path], base: str, write: bool = False) -> tuple[list[str], list[Path]]:
    """Refresh every file's blocks against the server at `base`. Returns the diffs of the
    files whose blocks were stale, and the files rewritten (only with `write`)."""
    import httpx

    with httpx.Client(base_url=base, timeout=60) as http:

        def send(request: Request) -> tuple[str, str]:
            r = http.request(
                request.method, request.path, headers=request.headers, content=request.body
            )
            return r.headers.get("content-type", ""), r.text

        schema: dict[str, Any] = {}

        def openapi() -> dict[str, Any]:
            if not schema:
                schema.update(http.get("/openapi.json").json())
            return schema

        diffs, written = [], []
        for path in files:
            old = path.read_text(encoding="utf-8")
            new = refresh(old, send, openapi)
            if new == old:
                continue
            name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        new.splitlines(keepends=True),
                        f"{name} (as written)",
                        f"{name} (what the code gives)",
                    )
                )
            )
            if write:
                path.write_text(new, encoding="utf-8")
                written.append(path)
    return diffs, written


def shipped_server() -> Any:
    """The service on the shipped checkpoint, with none of the caller's NAMEGEN_ settings
    that would change its answers (a LocalServer: use it in a `with`)."""
    sys.path.insert(0, str(REPO))
    from app.local_server import LocalServer

    env = {"NAMEGEN_CHECKPOINT": str(REPO / "checkpoints" / "default"), "NAMEGEN_API_KEYS": ""}
    return LocalServer(env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md, docs/*.md")
    parser.add_argument("--write", action="store_true", help="rewrite stale blocks in place")
    parser.add_argument("--base", help="a running server to ask instead of starting one")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    files = [p.resolve() for p in args.files] or default_files()
    if args.base:
        diffs, written = check_files(files, args.base, args.write)
    else:
        with shipped_server() as server:
            diffs, written = check_files(files, server.base, args.write)
    for path in written:
        print(f"readme_examples: rewrote {path}")
    if diffs and not args.write:
        print("".join(diffs))
        print(f"readme_examples: {len(diffs)} file(s) out of date with the code: {FIX}")
        return 1
    print(f"readme_examples: {len(files)} file(s) checked, {len(diffs)} changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
