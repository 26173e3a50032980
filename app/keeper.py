"""A warm `namegen`: the model kept loaded between commands, as `ollama` keeps its models.

Loading torch alone takes about 2 s on a small machine, longer than the whole answer to
`namegen generate -n 5`. So after a command that ran the model, `namegen` leaves a
*keeper* behind: a process of the same user that holds the checkpoints it loaded and
answers the next `namegen generate|score|infer` over a Unix socket in a private folder
(mode 0700, no TCP port; its process id beside it). The next command imports neither
torch nor pydantic: it sends its arguments (and its standard input when a name is `-`)
as JSON and prints what comes back, byte for byte what it would have printed itself.
The keeper reloads a checkpoint whose files changed and exits after `NAMEGEN_CLI_KEEP_S`
seconds (default 300) without a command; `NAMEGEN_CLI_KEEP_S=0` turns it off. Settings
(`NAMEGEN_*`) are part of the socket's name: other settings get a keeper of their own.

    python -m app.keeper [CHECKPOINT]    # what `namegen` starts in the background
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KEPT_COMMANDS = ("generate", "score", "infer")
MAX_MESSAGE = 64 << 20  # bytes: standard input of names, or an answer, is far smaller
DEFAULT_KEEP_S = 300.0


def keep_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("NAMEGEN_CLI_KEEP_S", DEFAULT_KEEP_S)))
    except ValueError:
        return 0.0  # an unreadable setting: no keeper, rather than a surprise


def folder() -> Path:
    """A folder only this user can enter (created so, and checked: never one of another)."""
    given = os.environ.get("NAMEGEN_CLI_KEEP_DIR")
    if given:
        path = Path(given)
    else:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime else Path(tempfile.gettempdir())
        path = base / f"namegen-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} must belong to this user with mode 0700")
    return path


def socket_path() -> Path:
    """One keeper per set of settings and Python: commands under other settings differ."""
    settings = sorted(
        (k, v) for k, v in os.environ.items() if k.startswith("NAMEGEN_") and "_CLI_" not in k
    )
    key = json.dumps([sys.executable, settings]).encode()
    return folder() / f"{hashlib.sha256(key).hexdigest()[:16]}.sock"


def _keeps(argv: list[str]) -> bool:
    """A command the keeper runs, while keepers are on."""
    return keep_seconds() > 0 and bool(argv) and argv[0] in KEPT_COMMANDS


def _receive(sock: socket.socket) -> dict[str, Any]:
    """A JSON message read to its end (the sender shuts its side), at most MAX_MESSAGE."""
    chunks, size = [], 0
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_MESSAGE:
            raise ValueError("message too large")
    message: dict[str, Any] = json.loads(b"".join(chunks))
    return message


def _exchange(sock: socket.socket, message: dict[str, Any]) -> dict[str, Any]:
    sock.sendall(json.dumps(message).encode())
    sock.shutdown(socket.SHUT_WR)
    return _receive(sock)


def ask(argv: list[str]) -> int | None:
    """Run a command in the keeper and print its answer; None when there is no keeper
    (or it went away), and the caller runs the command itself."""
    if not _keeps(argv):
        return None
    stdin = sys.stdin.read() if "-" in argv[1:] else None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(socket_path()))
            answer = _exchange(sock, {"argv": argv, "cwd": os.getcwd(), "stdin": stdin})
    except (OSError, ValueError):
        if stdin is not None:  # already read: the command run here reads it again
            sys.stdin = io.StringIO(stdin)
        return None
    sys.stdout.write(answer["out"])
    sys.stderr.write(answer["err"])
    return int(answer["code"])


def _checkpoint(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--checkpoint="):
            return os.path.abspath(arg.partition("=")[2])
        if arg == "--checkpoint" and i + 1 < len(argv):
            return os.path.abspath(argv[i + 1])
    return None


def start(argv: list[str]) -> None:
    """Leave a keeper behind after a command that loaded the model (none if one runs);
    it loads that command's checkpoint before its first answer."""
    if not _keeps(argv):
        return
    checkpoint = _checkpoint(argv)
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "app.keeper", *([checkpoint] if checkpoint else [])],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command and its terminal
        )


def _answer(message: dict[str, Any]) -> dict[str, Any]:
    from app import cli

    argv = [str(a) for a in message["argv"]]
    if not argv or argv[0] not in KEPT_COMMANDS:  # serve and train are never run here
        return {"code": 2, "out": "", "err": f"{cli.PROG}: the keeper runs only {KEPT_COMMANDS}\n"}
    out, err = io.StringIO(), io.StringIO()
    os.chdir(message["cwd"])  # relative --checkpoint paths mean the caller's folder
    sys.stdin = io.StringIO(message["stdin"] or "")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv, keep_loaded=True)
        except SystemExit as e:  # --help
            code = e.code if isinstance(e.code, int) else 0
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def _bind(path: Path) -> socket.socket | None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
    except OSError:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                server.close()
                return None  # another keeper answers here
            except OSError:
                path.unlink(missing_ok=True)  # left by a keeper that died
        server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(16)
    return server


def serve(checkpoint: str | None) -> None:
    """Answer commands one at a time until none came for the keep time."""
    path = socket_path()
    server = _bind(path)
    if server is None:
        return
    from app import cli

    # commands that come meanwhile wait for it; one that fails to load is loaded (and its
    # error reported) by the command that asks for it
    with contextlib.suppress(Exception):
        cli.load(checkpoint, keep=True)
    server.settimeout(keep_seconds())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leave through `finally`
    pid_file = path.with_suffix(".pid")
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return
            with conn:
                conn.settimeout(60)
                try:
                    conn.sendall(json.dumps(_answer(_receive(conn))).encode())
                except Exception:  # whatever went wrong, the caller runs the command itself
                    continue
    finally:
        server.close()
        path.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else None)
