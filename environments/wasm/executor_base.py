"""What the two executors share. `executor.Executor` runs command modules and
`component_executor.ComponentExecutor` calls components; both compile through their artifact cache with
one engine per profile, arm a run's deadline, output quota and deterministic host the same way, give it
WASI with captured streams, and name its trap or host error the same way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Generic

import wasmtime

from environments.wasm.cache import ArtifactCache, Compiled
from environments.wasm.deterministic import DeterministicHost, HostSlot
from environments.wasm.engine import EngineProfile, EngineSet, deadline_ticks
from environments.wasm.errors import WasmError
from environments.wasm.quota import OutputWatch
from environments.wasm.runs import CompileRequest, CompileResult, Trap, TrapKind, WasmLimits, WasmRun


class Capture:
    """A WASI output stream kept in memory up to `limit` bytes; writes beyond it fail with EFBIG."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflowed = False

    def __call__(self, chunk: bytes) -> int:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.data += chunk[:room]
            self.overflowed = True
            return -errno.EFBIG
        self.data += chunk
        return len(chunk)

    def clear(self) -> None:
        """Forget what was captured (a live instance's next call starts an empty log)."""
        self.data.clear()
        self.overflowed = False


class CachedExecutor(Generic[Compiled]):
    """Compiles through `cache` (one engine per profile) and arms runs; one run at a time per thread."""

    def __init__(self, cache: ArtifactCache[Compiled]) -> None:
        self._cache: ArtifactCache[Compiled] = cache
        self._engines = EngineSet()
        self._slot = HostSlot()

    def compile(self, request: CompileRequest) -> CompileResult:
        """Make sure the code is compiled and cached (checking its digest when it compiles it)."""
        started = time.perf_counter()
        profile = EngineProfile(canonicalize_nans=request.canonicalize_nans)
        _, _, cached = self._load(profile, request.module, request.sha256)
        return CompileResult(cached=cached, load_ms=(time.perf_counter() - started) * 1000)

    def _load(
        self, profile: EngineProfile, path: Path, sha256: str
    ) -> tuple[wasmtime.Engine, Compiled, bool]:
        """The profile's engine, the compiled code (cached, or compiled now) and whether it was cached."""
        engine = self._engines.get(profile)
        compiled, cached = self._cache.load(engine, profile, path, sha256)
        return engine, compiled, cached

    @staticmethod
    def _profile(run: WasmRun) -> EngineProfile:
        """The engine profile a run's determinism asks for."""
        return EngineProfile(
            canonicalize_nans=run.determinism.canonicalize_nans if run.determinism else False
        )

    @contextlib.contextmanager
    def _armed(
        self, run: WasmRun, limits: WasmLimits, engine: wasmtime.Engine, store: wasmtime.Store
    ) -> Iterator[OutputWatch]:
        """For the block: the store's wall-clock deadline set, and the run's deterministic host (if any) on
        this thread. Yields the output quota of the run's writable preopens, which interrupts the run at once
        when overrun (enter its `watching()` around the call)."""
        ticks = deadline_ticks(limits.wall_time_s)
        store.set_epoch_deadline(ticks)
        writable = [preopen.host for preopen in run.preopens if preopen.writable]
        watch = OutputWatch(writable, limits, lambda: advance_epoch(engine, ticks + 1))
        seed = run.determinism.seed if run.determinism else None
        self._slot.host = None if seed is None else DeterministicHost(seed, limits.wall_time_s)
        try:
            yield watch
        finally:
            self._slot.host = None


def wasi_config(run: WasmRun, stdout: Capture, stderr: Capture) -> wasmtime.WasiConfig:
    """WASI with exactly the run's argv, env, stdin and preopens, its output streams captured."""
    wasi = wasmtime.WasiConfig()
    wasi.argv = list(run.argv)
    wasi.env = [list(pair) for pair in run.env]
    wasi.stdout_custom = stdout
    wasi.stderr_custom = stderr
    for preopen in run.preopens:
        if not preopen.host.is_dir():
            raise WasmError(f"cannot preopen {preopen.host} as {preopen.guest}: not a directory")
        wasi.preopen_dir(str(preopen.host), preopen.guest, preopen.writable)
    if run.stdin:
        # An anonymous file in memory: WASI opens it by path (a new descriptor, at offset 0), and it is
        # gone with the run, with no file system work per run.
        fd = os.memfd_create("taskapi-stdin", os.MFD_CLOEXEC)
        try:
            unwritten = memoryview(run.stdin)
            while unwritten:
                unwritten = unwritten[os.write(fd, unwritten) :]
            wasi.stdin_file = f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
    return wasi


def advance_epoch(engine: wasmtime.Engine, ticks: int) -> None:
    """Move `engine`'s epoch `ticks` ahead: a store whose deadline is that close is interrupted."""
    for _ in range(ticks):
        engine.increment_epoch()


def error_summary(message: str) -> str:
    """The last line of a wasmtime error (the cause), without the backtrace."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def trap_of(code: wasmtime.TrapCode | None, message: str, limits: WasmLimits) -> Trap:
    """The `Trap` for a wasmtime trap code (None: another trap, described by `message`)."""
    if code is wasmtime.TrapCode.OUT_OF_FUEL:
        return Trap(TrapKind.OUT_OF_FUEL, f"out of fuel: the run used its whole budget of {limits.fuel} fuel")
    if code is wasmtime.TrapCode.INTERRUPT:
        return Trap(
            TrapKind.DEADLINE,
            f"wall-clock deadline of {limits.wall_time_s:g} s exceeded: the run was interrupted",
        )
    if code is wasmtime.TrapCode.STACK_OVERFLOW:
        return Trap(
            TrapKind.STACK_OVERFLOW, "stack overflow: the call stack was exhausted (recursion too deep)"
        )
    return Trap(TrapKind.TRAP, error_summary(message))
