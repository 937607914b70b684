"""Runs one `ComponentRun` in a worker process with the same limits as a command module.

A call gets a fresh store and instance (a warm run: the live one an earlier warm run of the same
configuration left, if any; up to `WARM_INSTANCES` are kept, and one whose call trapped, exited or
overran a quota is dropped): its own fuel budget and epoch deadline, store limits (linear memories,
tables, instances: a component is several core instances, so the counts are larger than a module's and
`memory_bytes` is shared equally by up to `COMPONENT_MEMORIES` memories), WASI preview 2 with exactly the
run's argv, env, stdin and preopens (no network: wasmtime's WASI grants no socket address), a module's
output quota on the writable preopens (`quota.OutputWatch`), the guest's stdout and stderr
captured together as its log, and under the deterministic profile the shadowed clocks
and randomness of `component_host`. The export's return value comes back as JSON in `WasmResult.stdout`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import component as wc

from environments.wasm.cache import ArtifactCache, read_wasm
from environments.wasm.compiler import compile_artifact
from environments.wasm.component import ComponentRun, is_component
from environments.wasm.component_host import define_deterministic_p2
from environments.wasm.component_values import lift, lower
from environments.wasm.deterministic import HostLimitHit
from environments.wasm.engine import EngineProfile
from environments.wasm.errors import ModuleRejected, WasmError
from environments.wasm.executor_base import CachedExecutor, Capture, error_summary, trap_of, wasi_config
from environments.wasm.runs import (
    CompileLimits,
    Trap,
    TrapKind,
    WasmLimits,
    WasmResult,
)

COMPONENT_MEMORIES = 4
"""The most linear memories a component may have (componentize-py's Python components have 2)."""
TRAP_CODES = {
    "all fuel consumed": wasmtime.TrapCode.OUT_OF_FUEL,
    "wasm trap: interrupt": wasmtime.TrapCode.INTERRUPT,
    "call stack exhausted": wasmtime.TrapCode.STACK_OVERFLOW,
}
"""A component call reports a trap as a `WasmtimeError` with wasmtime's message, not as a `Trap`."""
COMPONENT_INSTANCES = 64
COMPONENT_TABLES = 64
WARM_INSTANCES = 4
"""How many live instances of warm runs a worker keeps (the least recently used is dropped)."""


@dataclass
class _LiveInstance:
    """A store and instance kept for the next warm run of its configuration, with its log stream."""

    store: wasmtime.Store
    instance: wc.Instance
    log: Capture


def _warm_key(run: ComponentRun, profile: EngineProfile, limits: WasmLimits) -> Hashable:
    """What a live instance was made with: a warm run may reuse it only if all of it is the same."""
    deterministic = run.determinism is not None
    return (run.sha256, profile, deterministic, run.argv, run.env, run.stdin, run.preopens, limits)


class ComponentCache(ArtifactCache[wc.Component]):
    """The compile cache of components: the same sealed artifacts, bounds and eviction as modules'."""

    def read(self, path: Path, sha256: str) -> bytes:
        data = read_wasm(path, sha256, self.limits.module_bytes)
        if not is_component(data):
            raise ModuleRejected(f"{path} is not a WebAssembly component (a core module?)")
        return data

    def compile(self, profile: EngineProfile, data: bytes, name: str) -> bytes:
        return compile_artifact(profile, data, name, self.limits, component=True)

    def deserialize(self, engine: wasmtime.Engine, artifact: bytes) -> wc.Component:
        return wc.Component.deserialize(engine, artifact)


class ComponentExecutor(CachedExecutor[wc.Component]):
    """Instantiates components from the compile cache and calls their exports; one call per store."""

    def __init__(self, cache_dir: Path, compile_limits: CompileLimits | None = None) -> None:
        super().__init__(ComponentCache(cache_dir, compile_limits))
        self._linkers: dict[tuple[EngineProfile, bool], wc.Linker] = {}
        self._live: OrderedDict[Hashable, _LiveInstance] = OrderedDict()

    def run(self, run: ComponentRun) -> WasmResult:
        """Call the run's export under its limits; every ending is a `WasmResult`."""
        limits = run.limits or WasmLimits()
        deterministic = run.determinism is not None
        profile = self._profile(run)
        engine, component, _ = self._load(profile, run.module, run.sha256)
        warm_key = _warm_key(run, profile, limits) if run.warm else None
        live = self._live.pop(warm_key, None) if warm_key is not None else None
        if live is None:
            log = Capture(limits.stderr_bytes)
            store = wasmtime.Store(engine)
            store.set_wasi(wasi_config(run, log, log))
            store.set_limits(
                memory_size=limits.memory_bytes // COMPONENT_MEMORIES,
                table_elements=limits.table_elements_each,
                instances=COMPONENT_INSTANCES,
                tables=COMPONENT_TABLES,
                memories=COMPONENT_MEMORIES,
            )
        else:
            store, log = live.store, live.log
            log.clear()
        store.set_fuel(limits.fuel)
        with self._armed(run, limits, engine, store) as watch:
            wall_started, cpu_started = time.perf_counter(), time.thread_time_ns()
            if live is None:
                instance = self._instantiate(profile, deterministic, store, component, run)
            else:
                instance = live.instance
            with watch.watching():
                reply, exit_code, trap = self._call(store, instance, run, limits)
            wall_ms = (time.perf_counter() - wall_started) * 1000
            cpu_ns = time.thread_time_ns() - cpu_started
        if watch.overrun is not None:
            trap = Trap(TrapKind.OUTPUT_LIMIT, watch.overrun)
        elif log.overflowed and trap is None:
            trap = Trap(TrapKind.OUTPUT_LIMIT, f"the log exceeded its cap of {log.limit} bytes")
        if warm_key is not None and trap is None and exit_code == 0:
            self._keep_live(warm_key, _LiveInstance(store, instance, log))
        return WasmResult(
            exit_code=exit_code,
            stdout=reply,
            stderr=bytes(log.data),
            fuel=limits.fuel - store.get_fuel(),
            wall_ms=wall_ms,
            trap=trap,
            cpu_ns=cpu_ns,
        )

    def _keep_live(self, key: Hashable, live: _LiveInstance) -> None:
        self._live[key] = live
        while len(self._live) > WARM_INSTANCES:
            self._live.popitem(last=False)

    def _linker(self, profile: EngineProfile, deterministic: bool) -> wc.Linker:
        linker = self._linkers.get((profile, deterministic))
        if linker is None:
            linker = wc.Linker(self._engines.get(profile))
            linker.add_wasip2()
            if deterministic:
                define_deterministic_p2(linker, self._slot)
            self._linkers[profile, deterministic] = linker
        return linker

    def _instantiate(
        self,
        profile: EngineProfile,
        deterministic: bool,
        store: wasmtime.Store,
        component: wc.Component,
        run: ComponentRun,
    ) -> wc.Instance:
        try:
            return self._linker(profile, deterministic).instantiate(store, component)
        except wasmtime.WasmtimeError as exc:
            raise ModuleRejected(
                f"component {run.module.name} cannot be instantiated: {error_summary(str(exc))}"
            ) from exc

    @staticmethod
    def _function(store: wasmtime.Store, instance: wc.Instance, run: ComponentRun) -> wc.Func:
        where = instance.get_export_index(store, run.interface) if run.interface else None
        if run.interface and where is None:
            raise ModuleRejected(f"component {run.module.name} exports no interface {run.interface}")
        index = instance.get_export_index(store, run.function, where)
        function = None if index is None else instance.get_func(store, index)
        if function is None:
            owner = f"interface {run.interface}" if run.interface else "the top level"
            raise ModuleRejected(f"component {run.module.name} exports no function {run.function} in {owner}")
        return function

    def _call(
        self, store: wasmtime.Store, instance: wc.Instance, run: ComponentRun, limits: WasmLimits
    ) -> tuple[bytes, int | None, Trap | None]:
        """(the return value as JSON, exit code, trap) of calling the export."""
        function = self._function(store, instance, run)
        signature = function.type(store)
        if len(signature.params) != len(run.args):
            raise WasmError(
                f"{run.function} takes {len(signature.params)} argument(s), the run gave {len(run.args)}"
            )
        args = [lower(ty, value, name) for (name, ty), value in zip(signature.params, run.args, strict=True)]
        try:
            value = function(store, *args)
        except HostLimitHit as exc:
            return b"", None, Trap(exc.kind, exc.message)
        except wasmtime.ExitTrap as exc:
            return b"", exc.code, None
        except wasmtime.WasmtimeError as exc:
            return b"", None, _trap(str(exc), limits)
        plain = None if signature.result is None else lift(signature.result, value)
        return json.dumps(plain).encode(), 0, None


def _trap(message: str, limits: WasmLimits) -> Trap:
    """The `Trap` for an error a component call raised: a wasm trap, or a host error."""
    code = next((code for text, code in TRAP_CODES.items() if text in message), None)
    if code is not None or "wasm trap" in message:
        return trap_of(code, message, limits)
    return Trap(TrapKind.HOST_ERROR, f"host error: {error_summary(message)}")
