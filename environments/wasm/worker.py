"""The worker process: receives requests from its parent, runs them with an `Executor` (components: a
`ComponentExecutor`), replies.

Started by the pool as `python -m environments.wasm.worker FD CACHE_DIR COMPILE_LIMITS`, FD being its
end of a socket pair and COMPILE_LIMITS a JSON object of `CompileLimits`. A wasmtime abort kills only
this process; the parent notices the closed socket and replaces it.
The worker ends when its parent closes the socket, skipping interpreter finalisation (wasmtime's
runtime threads must not run during it).
"""

from __future__ import annotations

import json
import os
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from apps.sdk.parent import die_with_parent
from environments.wasm.component import ComponentRun, file_is_component
from environments.wasm.component_executor import ComponentExecutor
from environments.wasm.errors import WasmError
from environments.wasm.executor import Executor
from environments.wasm.quota import catch_refused_writes
from environments.wasm.runs import CompileLimits, CompileRequest, WasmRun
from environments.wasm.wire import Reply, send_error, send_reply


def handle(executor: Executor, components: ComponentExecutor, request: object) -> Reply:
    if isinstance(request, ComponentRun):
        return components.run(request)
    if isinstance(request, WasmRun):
        return executor.run(request)
    if isinstance(request, CompileRequest):
        return (components if file_is_component(request.module) else executor).compile(request)
    raise WasmError(f"the wasm worker got an unknown request {type(request).__name__}")


def serve(conn: Connection, cache_dir: str, compile_limits: CompileLimits) -> None:
    """Serve requests until the parent goes away."""
    executor: Executor | None = None
    components: ComponentExecutor | None = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        try:
            executor = executor or Executor(Path(cache_dir), compile_limits)
            components = components or ComponentExecutor(Path(cache_dir), compile_limits)
            reply = handle(executor, components, request)
        except WasmError as exc:
            send_error(conn, exc)
        except Exception as exc:
            send_error(conn, WasmError(f"internal error in the wasm worker: {type(exc).__name__}: {exc}"))
        else:
            send_reply(conn, reply)
    conn.close()
    os._exit(0)


def main(argv: list[str]) -> None:
    die_with_parent()  # a module mid-run does not read the socket: it would outlive a killed parent
    fd, cache_dir, compile_limits = argv
    catch_refused_writes()  # a write past RLIMIT_FSIZE fails with EFBIG, and the run names its quota
    serve(Connection(int(fd)), cache_dir, CompileLimits(**json.loads(compile_limits)))


if __name__ == "__main__":
    main(sys.argv[1:])
