"""Replies from a worker process to its parent, in plain JSON and raw bytes (never pickle).

The parent sends requests pickled (it trusts itself); a worker runs untrusted code, so what comes
back is parsed as data only: a JSON header, then for a run its stdout and stderr as raw messages.
"""

from __future__ import annotations

import json
from multiprocessing.connection import Connection
from typing import Any

from environments.wasm.errors import WIRE_ERRORS, WasmError
from environments.wasm.runs import CompileResult, Trap, TrapKind, WasmResult

Reply = WasmResult | CompileResult
MAX_HEADER_BYTES = 1 << 16


def send_reply(conn: Connection, reply: Reply) -> None:
    if isinstance(reply, CompileResult):
        conn.send_bytes(
            json.dumps({"kind": "compiled", "cached": reply.cached, "load_ms": reply.load_ms}).encode()
        )
        return
    header = {
        "kind": "result",
        "exit_code": reply.exit_code,
        "fuel": reply.fuel,
        "wall_ms": reply.wall_ms,
        "cpu_ns": reply.cpu_ns,
        "peak_memory_bytes": reply.peak_memory_bytes,
        "trap": None
        if reply.trap is None
        else {"kind": reply.trap.kind.value, "message": reply.trap.message},
    }
    conn.send_bytes(json.dumps(header).encode())
    conn.send_bytes(reply.stdout)
    conn.send_bytes(reply.stderr)


def send_error(conn: Connection, error: WasmError) -> None:
    conn.send_bytes(
        json.dumps({"kind": "error", "error": type(error).__name__, "message": str(error)}).encode()
    )


def receive_reply(conn: Connection, max_output_bytes: int) -> Reply:
    """Read one reply; a reported error is raised. EOFError / OSError: the worker is gone."""
    header: dict[str, Any] = json.loads(conn.recv_bytes(MAX_HEADER_BYTES))
    kind = header.get("kind")
    if kind == "error":
        raise WIRE_ERRORS.get(str(header.get("error")), WasmError)(str(header.get("message")))
    if kind == "compiled":
        return CompileResult(cached=bool(header["cached"]), load_ms=float(header["load_ms"]))
    if kind != "result":
        raise WasmError(f"the wasm worker sent a reply of unknown kind {kind!r}")
    stdout = conn.recv_bytes(max_output_bytes + 1)
    stderr = conn.recv_bytes(max_output_bytes + 1)
    trap = header["trap"]
    return WasmResult(
        exit_code=None if header["exit_code"] is None else int(header["exit_code"]),
        stdout=stdout,
        stderr=stderr,
        fuel=int(header["fuel"]),
        wall_ms=float(header["wall_ms"]),
        trap=None if trap is None else Trap(TrapKind(trap["kind"]), str(trap["message"])),
        cpu_ns=int(header["cpu_ns"]),
        peak_memory_bytes=int(header["peak_memory_bytes"]),
    )
