"""The worker process: receives requests from its parent, runs them with an `Executor`, replies.

Started by the pool as `python -m environments.wasm.worker FD CACHE_DIR`, FD being its end of a socket
pair. A wasmtime abort kills only this process; the parent notices the closed socket and replaces it.
The worker ends when its parent closes the socket, skipping interpreter finalisation (wasmtime's
runtime threads must not run during it).
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from environments.wasm.errors import WasmError
from environments.wasm.executor import Executor
from environments.wasm.runs import CompileRequest, WasmRun
from environments.wasm.wire import Reply, send_error, send_reply


def handle(executor: Executor, request: object) -> Reply:
    if isinstance(request, WasmRun):
        return executor.run(request)
    if isinstance(request, CompileRequest):
        return executor.compile(request)
    raise WasmError(f"the wasm worker got an unknown request {type(request).__name__}")


def serve(conn: Connection, cache_dir: str) -> None:
    """Serve requests until the parent goes away."""
    executor: Executor | None = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        try:
            executor = executor or Executor(Path(cache_dir))
            reply = handle(executor, request)
        except WasmError as exc:
            send_error(conn, exc)
        except Exception as exc:
            send_error(conn, WasmError(f"internal error in the wasm worker: {type(exc).__name__}: {exc}"))
        else:
            send_reply(conn, reply)
    conn.close()
    os._exit(0)


def main(argv: list[str]) -> None:
    fd, cache_dir = argv
    serve(Connection(int(fd)), cache_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
