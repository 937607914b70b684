"""Compiling a module, in a process of its own so that compile time and memory are bounded.

Cranelift's time and memory grow with what a module contains, not only with its size (an 8.7 MB module
took 50 s and 2.5 GB), so a worker never compiles in its own process: `compile_artifact` runs
`compile_child.py` (which imports only wasmtime) with the module on stdin, its address space limited to
`CompileLimits.memory_bytes`, and stops it after `CompileLimits.time_s`. The artifact it returns is
then checked to be a WASI command this host can run (`check_wasi_command`, by the cache). Each failure
is a `ModuleRejected` naming the limit or the reason.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import wasmtime

from environments.wasm import compile_child
from environments.wasm.engine import EngineProfile
from environments.wasm.errors import ModuleRejected
from environments.wasm.runs import CompileLimits

WASI_MODULE = "wasi_snapshot_preview1"
CHILD = Path(compile_child.__file__)
STDERR_TAIL = 500
ALLOCATION_FAILED = (-signal.SIGABRT, -signal.SIGSEGV, compile_child.EXIT_OUT_OF_MEMORY)
"""How the compiler process ends when it runs out of address space (Rust aborts on a failed allocation)."""


def check_wasi_command(module: wasmtime.Module, name: str) -> None:
    """Reject a module that imports what the host lacks or is not a WASI command (no `_start`)."""
    foreign = [f"{item.module}::{item.name}" for item in module.imports if item.module != WASI_MODULE]
    if foreign:
        raise ModuleRejected(
            f"module {name} imports {', '.join(foreign)}, which the host does not provide "
            f"(only {WASI_MODULE} is available)"
        )
    exports = {item.name: item.type for item in module.exports}
    if not isinstance(exports.get("_start"), wasmtime.FuncType):
        raise ModuleRejected(f"module {name} exports no `_start` function: it must be a WASI command module")


def compile_artifact(
    profile: EngineProfile, data: bytes, name: str, limits: CompileLimits, component: bool = False
) -> bytes:
    """The serialized artifact of `data` (a module, or a `component`) compiled for `profile`, made within
    `limits` by a child process."""
    settings = json.dumps(profile.config_settings())
    kind = ["component"] if component else []
    command = [sys.executable, "-I", str(CHILD), str(limits.memory_bytes), settings, *kind]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=limits.time_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModuleRejected(
            f"compiling module {name} exceeded the compile time limit of {limits.time_s:g} s; it was stopped"
        ) from exc
    stderr = done.stderr.decode("utf-8", errors="replace").strip()[-STDERR_TAIL:]
    if done.returncode == 0:
        return done.stdout
    if done.returncode == compile_child.EXIT_INVALID:
        raise ModuleRejected(f"module {name} is not a valid WebAssembly module: {stderr}")
    if done.returncode in ALLOCATION_FAILED or "memory allocation" in stderr:
        raise ModuleRejected(
            f"compiling module {name} exceeded the compile memory limit of {limits.memory_bytes} bytes"
        )
    raise ModuleRejected(
        f"compiling module {name} failed: the compiler exited with {done.returncode}: {stderr}"
    )
