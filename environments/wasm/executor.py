"""Runs one `WasmRun` in this process with all its limits. Worker processes use it; nothing else should.

A run gets a fresh store: fuel budget, epoch deadline, limits on memory (all memories together), tables,
instances, WASI with exactly the declared argv, env, stdin and preopens, stdout/stderr captured up to
their caps, an output quota on its writable preopens (`quota.OutputWatch`), and (deterministic profile)
the shadowed clock, random and file-stat functions. Every way a run can end becomes a `WasmResult`,
its trap naming the limit that was hit; a module that cannot run at all raises `ModuleRejected`.
"""

from __future__ import annotations

import time
from pathlib import Path

import wasmtime

from environments.wasm.cache import ModuleCache
from environments.wasm.deterministic import HostLimitHit, define_deterministic
from environments.wasm.engine import EngineProfile
from environments.wasm.errors import ModuleRejected
from environments.wasm.executor_base import CachedExecutor, Capture, error_summary, trap_of, wasi_config
from environments.wasm.runs import (
    MIB,
    CompileLimits,
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


class Executor(CachedExecutor[wasmtime.Module]):
    """Compiles (through the cache) and runs modules; one run at a time per thread."""

    def __init__(self, cache_dir: Path, compile_limits: CompileLimits | None = None) -> None:
        super().__init__(ModuleCache(cache_dir, compile_limits))
        self._linkers: dict[tuple[EngineProfile, bool], wasmtime.Linker] = {}

    def run(self, run: WasmRun) -> WasmResult:
        """Run the module's `_start` under the run's limits; every ending is a `WasmResult`."""
        limits = run.limits or WasmLimits()
        deterministic = run.determinism is not None
        profile = self._profile(run)
        engine, module, _ = self._load(profile, run.module, run.sha256)
        stdout, stderr = Capture(limits.stdout_bytes), Capture(limits.stderr_bytes)
        store = wasmtime.Store(engine)
        store.set_wasi(wasi_config(run, stdout, stderr))
        store.set_fuel(limits.fuel)
        store.set_limits(
            memory_size=limits.memory_bytes_each,
            table_elements=limits.table_elements_each,
            instances=MAX_INSTANCES,
            tables=limits.tables,
            memories=limits.memories,
        )
        with self._armed(run, limits, engine, store) as watch:
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

    def _linker(self, profile: EngineProfile, deterministic: bool) -> wasmtime.Linker:
        linker = self._linkers.get((profile, deterministic))
        if linker is None:
            linker = wasmtime.Linker(self._engines.get(profile))
            linker.define_wasi()
            if deterministic:
                define_deterministic(linker, self._slot)
            self._linkers[profile, deterministic] = linker
        return linker

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
            return None, Trap(TrapKind.HOST_ERROR, f"host error: {error_summary(str(exc))}")
        return 0, None


def _classify(trap: wasmtime.Trap, limits: WasmLimits) -> Trap:
    return trap_of(trap.trap_code, trap.message, limits)


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
