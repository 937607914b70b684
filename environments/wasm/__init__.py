"""The wasm environment: WASI command modules on wasmtime, in sandboxed worker processes.

Public API: `WasmEnvironment` (with `WasmConfig`, `WasmPrerequisites`), `WasmRun` and its parts
(`Preopen`, `WasmLimits`, `Determinism`), `WasmResult` / `Trap` / `TrapKind`, `WasmRuntime`, and the
errors in `environments.wasm.errors`. The app adapter is `environments.wasm.app_adapter`.
"""

from environments.wasm.environment import WasmConfig, WasmEnvironment, WasmPrerequisites
from environments.wasm.errors import (
    DigestMismatch,
    ModuleRejected,
    RunCancelled,
    WasmError,
    WorkerCrashed,
    WorkerTimeout,
)
from environments.wasm.runs import Determinism, Preopen, Trap, TrapKind, WasmLimits, WasmResult, WasmRun
from environments.wasm.runtime import WasmRuntime

__all__ = [
    "Determinism",
    "DigestMismatch",
    "ModuleRejected",
    "Preopen",
    "RunCancelled",
    "Trap",
    "TrapKind",
    "WasmConfig",
    "WasmEnvironment",
    "WasmError",
    "WasmLimits",
    "WasmPrerequisites",
    "WasmResult",
    "WasmRun",
    "WasmRuntime",
    "WorkerCrashed",
    "WorkerTimeout",
]
