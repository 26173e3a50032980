"""`python -m app`: check the checkpoint, then serve it with uvicorn.

A missing, truncated, corrupted or incompatible checkpoint stops here with one line
saying why and exit status 1, before any port is opened. The server runs with the limits
at the connection of app/connections.py (header size, time to send a request, open
connections) and the settings' keep-alive timeout.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from app.config import get_settings
from app.connections import ConnectionLimits, guarded_protocol
from model.checkpoint import CheckpointError
from model.engine import Engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true", help="no line per request")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        Engine.load(settings.checkpoint, device="cpu")  # validates everything it reads
    except CheckpointError as e:
        print(f"namegen: cannot start: {e}", file=sys.stderr)
        return 1
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        http=guarded_protocol(ConnectionLimits.of(settings)),
        timeout_keep_alive=settings.keep_alive_s,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
