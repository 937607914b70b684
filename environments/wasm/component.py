"""Components in the wasm environment: what a call of a component's export is (plain values, no wasmtime).

A `ComponentRun` is a `WasmRun` whose module is a WebAssembly component (WASI preview 2): instead of
running `_start` it calls one exported function with plain arguments and the same limits, preopens,
determinism and worker process as a command module. A record argument is a dict keyed by the WIT field
names (kebab case), a list a list, an option None or its value, an enum its case name.

What the call gave comes back as an ordinary `WasmResult`: `stdout` holds the function's return value
as JSON (a record as an object, `result` as `{"ok": value}` or `{"err": value}`, a variant as
`{"tag": case, "value": payload}`); the guest's own stdout and stderr both go to `stderr`, its log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.wasm.runs import WasmRun

WASM_MAGIC = b"\0asm"
COMPONENT_VERSION = b"\x0d\x00\x01\x00"
"""Bytes 4-7 of a component binary (version 0x0d, layer 1); a core module has 01 00 00 00."""


def is_component(header: bytes) -> bool:
    """Whether these first bytes of a wasm binary are a component's."""
    return header[:4] == WASM_MAGIC and header[4:8] == COMPONENT_VERSION


def file_is_component(path: Path) -> bool:
    """Whether the file at `path` is a component (False when it cannot be read)."""
    try:
        with path.open("rb") as handle:
            return is_component(handle.read(8))
    except OSError:
        return False


@dataclass(frozen=True)
class ComponentRun(WasmRun):
    """One call of `function`, exported by `interface` (an export instance such as
    `taskapi:app/provider@0.1.0`; empty: a function exported at the top level), with `args`.

    `warm`: the worker may call it on a live instance that an earlier warm run with the same module,
    WASI configuration (argv, env, stdin, preopens), profile and limits left behind, and keeps the instance
    for the next one; the guest's memory then lasts from call to call. Only for calls the node trusts with
    that (a requestor's own app): fuel, deadline, output quota and seed are still each call's own.
    """

    interface: str = ""
    function: str = ""
    args: tuple[Any, ...] = ()
    warm: bool = False

    def __post_init__(self) -> None:
        if not self.function:
            raise ValueError("a component run needs the name of the function to call")
