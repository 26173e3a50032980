"""The warm `namegen` (app/keeper.py): the second command is answered by the keeper the
first one left, with exactly what the command run alone prints; it is private to the
user, follows a retrained checkpoint, and goes away when idle or turned off."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import keeper

REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "checkpoints" / "babynames-2017"  # loads fastest


def namegen(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def wait_for(check: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def sockets(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sock"))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    folder = tmp_path / "keep"
    env = {**os.environ, "NAMEGEN_CLI_KEEP_DIR": str(folder), "NAMEGEN_CLI_KEEP_S": "30"}
    yield env
    for pid_file in folder.glob("*.pid") if folder.exists() else []:  # stop what it started
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def ask_directly(path: Path, argv: list[str], stdin: str | None = None) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(json.dumps({"argv": argv, "cwd": str(REPO), "stdin": stdin}).encode())
        s.shutdown(socket.SHUT_WR)
        answer: dict[str, object] = json.loads(b"".join(iter(lambda: s.recv(65536), b"")))
        return answer


def test_the_second_command_is_answered_by_the_keeper_with_the_same_output(
    env: dict[str, str],
) -> None:
    folder = Path(env["NAMEGEN_CLI_KEEP_DIR"])
    argv = ["generate", "-n", "5", "--seed", "7", "--json", "--checkpoint", str(SMALL)]
    cold = namegen({**env, "NAMEGEN_CLI_KEEP_S": "0"}, *argv)
    assert cold.returncode == 0 and not folder.exists()  # turned off: none left behind
    first = namegen(env, *argv)
    assert first.stdout == cold.stdout and first.returncode == 0
    wait_for(lambda: sockets(folder))
    (path,) = sockets(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the keeper itself answers the command, as the command would print it
    answer = ask_directly(path, argv)
    assert answer == {"code": 0, "out": cold.stdout, "err": ""}
    # and so does the next command (names from stdin too), through the same keeper
    score = ["score", "-", "--json", "--checkpoint", str(SMALL)]
    assert (
        ask_directly(path, score, "emma\nolivia\n")["out"]
        == namegen(env, *score, stdin="emma\nolivia\n").stdout
    )
    again = namegen(env, *argv)
    assert (again.returncode, again.stdout, again.stderr) == (0, cold.stdout, "")


def test_bad_input_through_the_keeper_exits_2_with_one_line(env: dict[str, str]) -> None:
    folder = Path(env["NAMEGEN_CLI_KEEP_DIR"])
    assert namegen(env, "score", "emma", "--checkpoint", str(SMALL)).returncode == 0
    wait_for(lambda: sockets(folder))
    (path,) = sockets(folder)
    wait_for(lambda: ask_directly(path, ["score", "emma"])["code"] == 0)
    bad = namegen(env, "score", "em1ma", "--checkpoint", str(SMALL))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "'em1ma' has a character outside" in bad.stderr
    helped = ask_directly(path, ["generate", "--help"])
    assert helped["code"] == 0 and "--ends_with" in str(helped["out"])
    refused = ask_directly(path, ["train", "--corpus", "x", "--out", "y"])
    assert refused["code"] == 2 and "only" in str(refused["err"])


def test_a_retrained_checkpoint_is_loaded_again(env: dict[str, str], tmp_path: Path) -> None:
    folder = Path(env["NAMEGEN_CLI_KEEP_DIR"])
    copy = tmp_path / "ckpt"
    shutil.copytree(SMALL, copy)
    argv = ["score", "emma", "--json", "--checkpoint", str(copy)]
    before = namegen(env, *argv)
    wait_for(lambda: sockets(folder))
    (path,) = sockets(folder)
    assert ask_directly(path, argv)["out"] == before.stdout  # loaded: now retrain it
    shutil.rmtree(copy)
    shutil.copytree(REPO / "checkpoints" / "default", copy)  # "retrained" in place
    after = ask_directly(path, argv)
    assert after["code"] == 0 and after["out"] != before.stdout
    assert after["out"] == namegen({**env, "NAMEGEN_CLI_KEEP_S": "0"}, *argv).stdout


def test_the_keeper_leaves_when_idle(env: dict[str, str]) -> None:
    folder = Path(env["NAMEGEN_CLI_KEEP_DIR"])
    env = {**env, "NAMEGEN_CLI_KEEP_S": "2"}
    assert namegen(env, "score", "emma", "--checkpoint", str(SMALL)).returncode == 0
    wait_for(lambda: sockets(folder))
    wait_for(lambda: not sockets(folder), seconds=30)


def test_settings_get_a_keeper_of_their_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NAMEGEN_CLI_KEEP_DIR", str(tmp_path / "k"))
    first = keeper.socket_path()
    monkeypatch.setenv("NAMEGEN_MAX_N", "7")
    assert keeper.socket_path() != first
    monkeypatch.setenv("NAMEGEN_CLI_KEEP_S", "9")  # the keeper's own settings are not
    monkeypatch.delenv("NAMEGEN_MAX_N")
    assert keeper.socket_path() == first


def test_a_folder_others_can_enter_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o777)
    open_folder.chmod(0o777)
    monkeypatch.setenv("NAMEGEN_CLI_KEEP_DIR", str(open_folder))
    with pytest.raises(PermissionError, match="0700"):
        keeper.folder()
