"""Errors of the wasm environment. A run that starts and traps is not an error: see `WasmResult.trap`."""

from __future__ import annotations


class WasmError(Exception):
    """Base class: a run or compile that could not happen; the message says why."""


class ModuleRejected(WasmError):
    """The module cannot run here: missing, not wasm, invalid, or importing what the host lacks."""


class DigestMismatch(ModuleRejected):
    """The module's bytes do not hash to the sha256 it was announced with."""


class WorkerCrashed(WasmError):
    """The worker process running the module died (e.g. a wasmtime abort); it has been replaced."""


class WorkerTimeout(WasmError):
    """The worker did not answer within the run's deadline plus a grace period; it was killed."""


class RunCancelled(WasmError):
    """The run was cancelled (stopped, or the environment cleaned up) before it finished."""


class CacheDirUnsafe(WasmError):
    """The compile cache directory is not private to this user, so its artifacts cannot be trusted."""


WIRE_ERRORS: dict[str, type[WasmError]] = {
    cls.__name__: cls for cls in (WasmError, ModuleRejected, DigestMismatch, CacheDirUnsafe)
}
"""The errors a worker may report over the wire, by name (anything else arrives as `WasmError`)."""
