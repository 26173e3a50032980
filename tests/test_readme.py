"""The docs tell the truth: README.md stays short, every relative link in the docs leads
somewhere, and every example output and generated table in README.md and docs/*.md is
what the code gives (scripts/readme_examples.py, against the real server)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", REPO / "experiments" / "README.md", *sorted(REPO.glob("docs/*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCED = re.compile(r"^```.*?^```", re.S | re.M)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_examples", REPO / "scripts" / "readme_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


examples = load_script()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with examples.shipped_server() as server:
        yield server.base


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a markdown file."""
    text = FENCED.sub("", path.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_readme_is_at_most_250_lines() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move detail into docs/"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading(doc: Path) -> None:
    text = FENCED.sub("", doc.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{doc.relative_to(REPO)}: {broken}"


def test_the_readme_shows_the_agreed_examples() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [m.group(3) for m in examples.EXAMPLE.finditer(readme)]
    requests = [examples.parse_curl(examples.FENCE.search(b).group(1)) for b in blocks]
    bodies = [(r.path, json.loads(r.body) if r.body else None) for r in requests]
    assert ("/generate", {"n": 5, "seed": 42}) in bodies
    assert ("/score", {"names": ["emma", "zyxwv"]}) in bodies


def test_curl_commands_are_read_as_curl_sends_them() -> None:
    request = examples.parse_curl(
        "$ curl -s http://127.0.0.1:8000/score -H 'Content-Type: application/json' \\\n"
        '    -d \'{"names": ["emma"]}\''
    )
    assert (request.method, request.path) == ("POST", "/score")
    assert request.headers == {"content-type": "application/json"}
    assert request.body == '{"names": ["emma"]}'
    plain = examples.parse_curl("$ curl -s localhost:8000/score -d 'x'")
    assert plain.headers["content-type"] == "application/x-www-form-urlencoded"
    assert examples.parse_curl("$ curl http://h/ready?x=1").method == "GET"
    with pytest.raises(ValueError, match="not understood"):
        examples.parse_curl("$ curl --json '{}' http://h/generate")


def test_the_layout_is_json_with_the_same_content() -> None:
    value = {
        "scores": [
            {"name": "a" * 30, "logprob": -1.5, "char_probs": [{"c": "x", "p": 0.25}] * 9},
            {"name": "b", "nested": {"deep": list(range(40))}, "ok": True, "none": None},
        ],
        "complete": False,
    }
    text = examples.layout(value)
    assert json.loads(text) == value
    assert max(len(line) for line in text.splitlines()) <= examples.WIDTH


@pytest.mark.slow
def test_the_docs_examples_are_what_the_server_answers(base: str) -> None:
    diffs, _ = examples.check_files(examples.default_files(), base)
    assert not diffs, f"{examples.FIX}\n" + "".join(diffs)


@pytest.mark.slow
def test_a_stale_example_is_caught_and_rewritten(base: str, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    stale = tmp_path / "README.md"
    stale.write_text(readme.replace("```json\n", "```json\n// stale\n", 1), encoding="utf-8")
    diffs, _ = examples.check_files([stale], base)
    assert len(diffs) == 1 and "-// stale" in diffs[0]
    _, written = examples.check_files([stale], base, write=True)
    assert written == [stale]
    assert stale.read_text(encoding="utf-8") == readme
