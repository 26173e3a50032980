"""`namegen` on a checkpoint, against the server on the same checkpoint: --json is the
API's answer for the same request, value for value; bad input exits 2 with one line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from app.local_server import LocalServer, free_port
from tests.app.labelled import build_labelled_checkpoint

REPO = Path(__file__).resolve().parents[2]
# the checkpoint shipped before labels came: no labels, no backward network
UNLABELLED = ["--checkpoint", str(REPO / "checkpoints" / "babynames-2017")]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with LocalServer() as s:
        yield s.base


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    checkpoint = build_labelled_checkpoint(tmp_path_factory.getbasetemp())
    with LocalServer({"NAMEGEN_CHECKPOINT": str(checkpoint)}) as s:
        yield checkpoint, s.base


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def post(base: str, path: str, body: dict[str, Any]) -> Any:
    resp = httpx.post(base + path, json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_namegen_is_the_package_command() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["namegen"] == "app.cli:console"


def test_generate_json_is_the_api_answer(capsys: pytest.CaptureFixture[str], server: str) -> None:
    assert as_json(capsys, "generate", "-n", "5", "--seed", "42") == post(
        server, "/generate", {"n": 5, "seed": 42}
    )


def test_every_generate_control_is_a_flag(capsys: pytest.CaptureFixture[str], server: str) -> None:
    body = {
        "n": 7, "temperature": 0.7, "top_k": 12, "top_p": 0.95, "seed": 3, "prefix": "ka",
        "min_length": 4, "max_length": 8, "exclude_existing": True, "unique": True,
    }  # fmt: skip
    argv = ["generate"]
    for field, value in body.items():
        argv += [f"--{field}"] if value is True else [f"--{field}", str(value)]
    got = as_json(capsys, *argv)
    assert got == post(server, "/generate", body)
    assert all(g["name"].startswith("ka") and not g["in_corpus"] for g in got["names"])
    # dashes work too, as people type them
    assert as_json(capsys, "generate", "--top-k", "12", "--seed", "3", "-n", "2") == post(
        server, "/generate", {"top_k": 12, "seed": 3, "n": 2}
    )


def test_score_json_is_the_api_answer(capsys: pytest.CaptureFixture[str], server: str) -> None:
    assert as_json(capsys, "score", "emma") == post(server, "/score", {"names": ["emma"]})
    names = [" Emma ", "zyxwv", "olivia"]  # trimmed and lowercased by both
    assert as_json(capsys, "score", *names) == post(server, "/score", {"names": names})


def test_a_dash_reads_names_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("olivia\n\n noah \n"))
    got = as_json(capsys, "score", "emma", "-")
    assert [s["name"] for s in got["scores"]] == ["emma", "olivia", "noah"]


def test_tables_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "generate", "-n", "3", "--seed", "42")
    names = as_json(capsys, "generate", "-n", "3", "--seed", "42")["names"]
    assert code == 0 and out.splitlines()[0].split()[:2] == ["name", "logprob"]
    for g in names:
        assert g["name"] in out
    assert out.rstrip().endswith("seed 42")
    code, out, _ = run(capsys, "score", "emma")
    logprob = as_json(capsys, "score", "emma")["scores"][0]["logprob"]
    assert code == 0 and "emma" in out and f"{logprob:.3f}" in out


def test_labelled_checkpoint_answers_as_the_api(
    capsys: pytest.CaptureFixture[str], labelled: tuple[Path, str]
) -> None:
    checkpoint, base = labelled
    ck = ["--checkpoint", str(checkpoint)]
    names = ["bunila", "sirero"]
    assert as_json(capsys, "infer", *names, *ck) == post(base, "/infer", {"names": names})
    got = as_json(capsys, "score", *names, "--labels", "sex=f,decade=1900", *ck)
    assert got == post(base, "/score", {"names": names, "labels": {"sex": "f", "decade": 1900}})
    assert got["labels"] == {"sex": "F", "decade": "1900"}
    got = as_json(capsys, "generate", "-n", "6", "--seed", "9", "--labels", "sex=M", *ck)
    assert got == post(base, "/generate", {"n": 6, "seed": 9, "labels": {"sex": "M"}})
    code, out, _ = run(capsys, "infer", "bunila", *ck)
    assert code == 0 and "bunila" in out and "F" in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["generate", "--bogus"], "unrecognized arguments: --bogus"),
        (["generate", "-n", "many"], "n: Input should be a valid integer"),
        (["generate", "-n", "0"], "n: Input should be greater than or equal to 1"),
        (["generate", "--min_length", "9", "--max_length", "3"], "min_length (9) is more than"),
        (["generate", "--prefix", "m4"], "prefix: character '4' is not in the model's"),
        (["generate", "--labels", "sex=X"], "labels.sex: "),
        (["generate", "--labels", "sex=F", *UNLABELLED], "labels: this checkpoint has no labels"),
        (["generate", "--ends-with", "a", *UNLABELLED], "ends_with: "),
        (["generate", "--labels", "sex"], "--labels: 'sex' is not COLUMN=VALUE"),
        (["score", "em1ma", "emma", "x y"], "names.0: 'em1ma' has a character outside"),
        (["score"], "the following arguments are required: NAME"),
        (["infer", "emma", *UNLABELLED], "this checkpoint has no labels"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["score", "emma", "--checkpoint", "/nonexistent"], "--checkpoint:"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and said in err, err


def test_usage_errors_and_help_do_not_load_torch() -> None:
    """The command starts fast: torch is imported by the commands that run the model."""
    code = (
        "import sys; from app.cli import main; "
        "codes = [main(['generate-typo']), main(['score'])]; "
        "print(codes, 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.stdout.strip() == "[2, 2] False", done.stdout + done.stderr


def ready(base: str) -> bool:
    try:
        return httpx.get(base + "/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_serves_the_checkpoint_given(labelled: tuple[Path, str]) -> None:
    checkpoint, _ = labelled
    port = free_port()
    argv = ["serve", "--checkpoint", str(checkpoint), "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", *argv], cwd=REPO)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not ready(base):
            assert proc.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.1)
        model = httpx.get(base + "/model").json()
        assert model["checkpoint"] == checkpoint.name and model["labels"] is not None
        assert httpx.get(base + "/").headers["content-type"].startswith("text/html")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_train_is_the_training_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_generate_has_a_flag_for_every_field_of_the_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from model.request import GenerateRequest

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    usage = capsys.readouterr().out
    for field in GenerateRequest.model_fields:
        assert f"--{field}" in usage, field
