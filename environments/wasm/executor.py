"""Runs one `WasmRun` in this process with all its limits. Worker processes use it; nothing else should.

A run gets a fresh store: fuel budget, epoch deadline, limits on memory (all memories together), tables,
instances, WASI with exactly the declared argv, env, stdin and preopens, stdout/stderr captured up to
their caps, an output quota on its writable preopens (`quota.OutputWatch`), and (deterministic profile)
the shadowed clock, random and file-stat functions. Every way a run can end becomes a `WasmResult`,
its trap naming the limit that was hit; a module that cannot run at all raises `ModuleRejected`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import wasmtime

from environments.wasm.cache import ModuleCache
from environments.wasm.deterministic import DeterministicHost, HostLimitHit, HostSlot, define_deterministic
from environments.wasm.engine import EngineProfile, EngineSet, deadline_ticks
from environments.wasm.errors import ModuleRejected, WasmError
from environments.wasm.quota import OutputWatch
from environments.wasm.runs import (
    MIB,
    CompileLimits,
    CompileRequest,
    CompileResult,
    Trap,
    TrapKind,
    WasmLimits,
    WasmResult,
    WasmRun,
)

WASM_PAGE = 1 << 16
MAX_INSTANCES = 2
"""The module's own instance, and the file-stat shim of the deterministic profile."""
INSTANTIATION_LIMITS = (
    ("memory count too high", "memory count limit of {limits.memories} reached"),
    ("memory minimum size", "memory limit of {limits.memory_bytes_each} bytes reached"),
    ("table count too high", "table count limit of {limits.tables} reached"),
    ("table minimum size", "table limit of {limits.table_elements_each} elements reached"),
    ("instance count too high", "instance limit of {instances} reached"),
)
"""wasmtime's instantiation errors for a store limit, and the limit each one names."""


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


class Executor:
    """Compiles (through the cache) and runs modules; one run at a time per thread."""

    def __init__(self, cache_dir: Path, compile_limits: CompileLimits | None = None) -> None:
        self._cache = ModuleCache(cache_dir, compile_limits)
        self._engines = EngineSet()
        self._linkers: dict[tuple[EngineProfile, bool], wasmtime.Linker] = {}
        self._slot = HostSlot()

    def compile(self, request: CompileRequest) -> CompileResult:
        """Make sure the module is compiled and cached (checking its digest when it compiles it)."""
        started = time.perf_counter()
        profile = EngineProfile(canonicalize_nans=request.canonicalize_nans)
        _, _, cached = self._module(profile, request.module, request.sha256)
        return CompileResult(cached=cached, load_ms=(time.perf_counter() - started) * 1000)

    def run(self, run: WasmRun) -> WasmResult:
        """Run the module's `_start` under the run's limits; every ending is a `WasmResult`."""
        limits = run.limits or WasmLimits()
        deterministic = run.determinism is not None
        profile = EngineProfile(
            canonicalize_nans=run.determinism.canonicalize_nans if run.determinism else False
        )
        engine, module, _ = self._module(profile, run.module, run.sha256)
        stdout, stderr = Capture(limits.stdout_bytes), Capture(limits.stderr_bytes)
        store = wasmtime.Store(engine)
        store.set_wasi(self._wasi(run, stdout, stderr))
        store.set_fuel(limits.fuel)
        store.set_limits(
            memory_size=limits.memory_bytes_each,
            table_elements=limits.table_elements_each,
            instances=MAX_INSTANCES,
            tables=limits.tables,
            memories=limits.memories,
        )
        ticks = deadline_ticks(limits.wall_time_s)
        store.set_epoch_deadline(ticks)
        writable = [preopen.host for preopen in run.preopens if preopen.writable]
        watch = OutputWatch(writable, limits, lambda: _advance_epoch(engine, ticks + 1))
        with self._deterministic_host(run, limits):
            wall_started, cpu_started = time.perf_counter(), time.thread_time_ns()
            instance = self._instantiate(profile, deterministic, store, module, run.module.name, limits)
            with watch.watching():
                exit_code, trap = self._call_start(store, instance, limits)
            wall_ms = (time.perf_counter() - wall_started) * 1000
            cpu_ns = time.thread_time_ns() - cpu_started
        exports = instance.exports(store)
        memory = exports.get("memory")
        peak = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else 0
        tables = [item.size(store) for name in exports if isinstance(item := exports[name], wasmtime.Table)]
        if watch.overrun is not None:
            trap = Trap(TrapKind.OUTPUT_LIMIT, watch.overrun)
        trap = (
            _output_trap(stdout, stderr)
            or _memory_trap(exit_code, trap, peak, limits)
            or _table_trap(exit_code, trap, tables, limits)
            or trap
        )
        return WasmResult(
            exit_code=exit_code,
            stdout=bytes(stdout.data),
            stderr=bytes(stderr.data),
            fuel=limits.fuel - store.get_fuel(),
            wall_ms=wall_ms,
            trap=trap,
            cpu_ns=cpu_ns,
            peak_memory_bytes=peak,
        )

    def _module(
        self, profile: EngineProfile, path: Path, sha256: str
    ) -> tuple[wasmtime.Engine, wasmtime.Module, bool]:
        engine = self._engines.get(profile)
        module, cached = self._cache.load(engine, profile, path, sha256)
        return engine, module, cached

    def _linker(self, profile: EngineProfile, deterministic: bool) -> wasmtime.Linker:
        linker = self._linkers.get((profile, deterministic))
        if linker is None:
            linker = wasmtime.Linker(self._engines.get(profile))
            linker.define_wasi()
            if deterministic:
                define_deterministic(linker, self._slot)
            self._linkers[profile, deterministic] = linker
        return linker

    @staticmethod
    def _wasi(run: WasmRun, stdout: Capture, stderr: Capture) -> wasmtime.WasiConfig:
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
            fd, name = tempfile.mkstemp(prefix="taskapi-stdin-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(run.stdin)
                wasi.stdin_file = name  # opened here; the file is unlinked at once
            finally:
                os.unlink(name)
        return wasi

    @contextlib.contextmanager
    def _deterministic_host(self, run: WasmRun, limits: WasmLimits) -> Iterator[None]:
        seed = run.determinism.seed if run.determinism else None
        self._slot.host = None if seed is None else DeterministicHost(seed, limits.wall_time_s)
        try:
            yield
        finally:
            self._slot.host = None

    def _instantiate(
        self,
        profile: EngineProfile,
        deterministic: bool,
        store: wasmtime.Store,
        module: wasmtime.Module,
        name: str,
        limits: WasmLimits,
    ) -> wasmtime.Instance:
        try:
            return self._linker(profile, deterministic).instantiate(store, module)
        except wasmtime.WasmtimeError as exc:
            reason = str(exc).strip().splitlines()[0]
            named = [
                limit.format(limits=limits, instances=MAX_INSTANCES)
                for cause, limit in INSTANTIATION_LIMITS
                if cause in reason
            ]
            raise ModuleRejected(
                f"module {name} cannot be instantiated: {'; '.join([*named, reason])}"
            ) from exc

    @staticmethod
    def _call_start(
        store: wasmtime.Store, instance: wasmtime.Instance, limits: WasmLimits
    ) -> tuple[int | None, Trap | None]:
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except HostLimitHit as exc:
            return None, Trap(exc.kind, exc.message)
        except wasmtime.ExitTrap as exc:
            return exc.code, None
        except wasmtime.Trap as exc:
            return None, _classify(exc, limits)
        except wasmtime.WasmtimeError as exc:
            return None, Trap(TrapKind.HOST_ERROR, f"host error: {_summary(str(exc))}")
        return 0, None


def _summary(message: str) -> str:
    """The last line of a wasmtime error (the cause), without the backtrace."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _classify(trap: wasmtime.Trap, limits: WasmLimits) -> Trap:
    return trap_of(trap.trap_code, trap.message, limits)


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
    return Trap(TrapKind.TRAP, _summary(message))


def _advance_epoch(engine: wasmtime.Engine, ticks: int) -> None:
    """Move `engine`'s epoch `ticks` ahead: a store whose deadline is that close is interrupted."""
    for _ in range(ticks):
        engine.increment_epoch()


def _output_trap(stdout: Capture, stderr: Capture) -> Trap | None:
    for name, capture in (("stdout", stdout), ("stderr", stderr)):
        if capture.overflowed:
            return Trap(
                TrapKind.OUTPUT_LIMIT,
                f"{name} exceeded its cap of {capture.limit} bytes; the output was cut there",
            )
    return None


def _failed(exit_code: int | None, trap: Trap | None) -> bool:
    """The run trapped in the module or exited non-zero (what a refused grow usually leads to)."""
    return (trap is not None and trap.kind is TrapKind.TRAP) or exit_code not in (0, None)


def _ending(exit_code: int | None, trap: Trap | None) -> str:
    return trap.message if trap is not None else f"the module exited with code {exit_code}"


def _memory_trap(exit_code: int | None, trap: Trap | None, peak: int, limits: WasmLimits) -> Trap | None:
    """A failed run whose memory is within one page of the limit ran out of memory (grow was refused)."""
    if not _failed(exit_code, trap) or peak + WASM_PAGE <= limits.memory_bytes_each:
        return None
    return Trap(
        TrapKind.MEMORY_LIMIT,
        f"memory limit of {limits.memory_bytes} bytes ({limits.memory_bytes / MIB:g} MiB) reached: "
        f"linear memory could not grow; then {_ending(exit_code, trap)}",
    )


def _table_trap(
    exit_code: int | None, trap: Trap | None, sizes: list[int], limits: WasmLimits
) -> Trap | None:
    """A failed run with an exported table at its limit ran out of table space (table.grow was refused)."""
    if not _failed(exit_code, trap) or all(size < limits.table_elements_each for size in sizes):
        return None
    return Trap(
        TrapKind.TABLE_LIMIT,
        f"table limit of {limits.table_elements_each} elements reached: a table could not grow; "
        f"then {_ending(exit_code, trap)}",
    )
