"""Runs one `WasmRun` in this process with all its limits. Worker processes use it; nothing else should.

A run gets a fresh store: fuel budget, epoch deadline, memory limit, WASI with exactly the declared
argv, env, stdin and preopens, stdout/stderr captured up to their caps, and (deterministic profile) the
shadowed clock and random functions. Every way a run can end becomes a `WasmResult`; a module that
cannot run at all raises `ModuleRejected`.
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
from environments.wasm.deterministic import DeterministicHost, HostSlot, define_deterministic
from environments.wasm.engine import EngineProfile, EngineSet, deadline_ticks
from environments.wasm.errors import ModuleRejected, WasmError
from environments.wasm.runs import (
    MIB,
    CompileRequest,
    CompileResult,
    Trap,
    TrapKind,
    WasmLimits,
    WasmResult,
    WasmRun,
)

UNLIMITED_FUEL = (1 << 63) - 1
WASM_PAGE = 1 << 16


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


class Executor:
    """Compiles (through the cache) and runs modules; one run at a time per thread."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache = ModuleCache(cache_dir)
        self._engines = EngineSet()
        self._linkers: dict[tuple[EngineProfile, bool], wasmtime.Linker] = {}
        self._fingerprints: dict[EngineProfile, str] = {}
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
        fuel = limits.fuel or UNLIMITED_FUEL
        store.set_fuel(fuel)
        store.set_limits(memory_size=limits.memory_bytes)
        store.set_epoch_deadline(deadline_ticks(limits.wall_time_s))
        with self._deterministic_host(run):
            wall_started, cpu_started = time.perf_counter(), time.thread_time_ns()
            instance = self._instantiate(profile, deterministic, store, module, run.module.name)
            exit_code, trap = self._call_start(store, instance, limits)
            wall_ms = (time.perf_counter() - wall_started) * 1000
            cpu_ns = time.thread_time_ns() - cpu_started
        memory = instance.exports(store).get("memory")
        peak = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else 0
        trap = _output_trap(stdout, stderr, limits) or _memory_trap(exit_code, trap, peak, limits) or trap
        return WasmResult(
            exit_code=exit_code,
            stdout=bytes(stdout.data),
            stderr=bytes(stderr.data),
            fuel=fuel - store.get_fuel(),
            wall_ms=wall_ms,
            trap=trap,
            cpu_ns=cpu_ns,
            peak_memory_bytes=peak,
        )

    def _module(
        self, profile: EngineProfile, path: Path, sha256: str
    ) -> tuple[wasmtime.Engine, wasmtime.Module, bool]:
        engine = self._engines.get(profile)
        fingerprint = self._fingerprints.setdefault(profile, profile.fingerprint())
        module, cached = self._cache.load(engine, fingerprint, path, sha256)
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
    def _deterministic_host(self, run: WasmRun) -> Iterator[None]:
        self._slot.host = DeterministicHost(run.determinism.seed) if run.determinism else None
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
    ) -> wasmtime.Instance:
        try:
            return self._linker(profile, deterministic).instantiate(store, module)
        except wasmtime.WasmtimeError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise ModuleRejected(f"module {name} cannot be instantiated: {reason}") from exc

    @staticmethod
    def _call_start(
        store: wasmtime.Store, instance: wasmtime.Instance, limits: WasmLimits
    ) -> tuple[int | None, Trap | None]:
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
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
    code = trap.trap_code
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
    return Trap(TrapKind.TRAP, _summary(trap.message))


def _output_trap(stdout: Capture, stderr: Capture, limits: WasmLimits) -> Trap | None:
    for name, capture in (("stdout", stdout), ("stderr", stderr)):
        if capture.overflowed:
            return Trap(
                TrapKind.OUTPUT_LIMIT,
                f"{name} exceeded its cap of {capture.limit} bytes; the output was cut there",
            )
    return None


def _memory_trap(exit_code: int | None, trap: Trap | None, peak: int, limits: WasmLimits) -> Trap | None:
    """A failed run whose memory is within one page of the limit ran out of memory (grow was refused)."""
    failed = (trap is not None and trap.kind is TrapKind.TRAP) or exit_code not in (0, None)
    if not failed or peak + WASM_PAGE <= limits.memory_bytes:
        return None
    ending = trap.message if trap is not None else f"the module exited with code {exit_code}"
    return Trap(
        TrapKind.MEMORY_LIMIT,
        f"memory limit: linear memory reached its limit of {limits.memory_bytes / MIB:g} MiB "
        f"and memory.grow was refused; then {ending}",
    )
