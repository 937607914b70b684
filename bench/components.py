"""What a task-api component costs next to a C core module, measured in one run and printed as ratios.

1. Compile and load: the first compile of tutorialapp's component (20 MB of CPython, in the compiler
   process), a warm load from the compile cache (HMAC check + deserialize: a fresh worker's first call),
   and an instantiate from the in-memory cache (every later call on a warm worker). Goal: <= 10 ms.
2. Fixed overhead of a subtask: a `compute` of an empty nonce range through the wasm environment
   (worker pool, fresh store and instance, the call), component against the C module of wasm_apps/.
3. Work: the same PoW range in Python inside the component, against the same Python code on native
   CPython (`apps.tutorialapp.pow.search`), and against the C module.

    python bench/components.py [--repeats N] [--nonces N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import wasmtime
from wasmtime import component as wc

from apps.sdk.workdir import ProviderTaskDir
from apps.tutorialapp import pow
from environments.wasm import WasmConfig, WasmEnvironment
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmProviderApp
from environments.wasm.compiler import compile_artifact
from environments.wasm.component_executor import ComponentCache
from environments.wasm.engine import EngineProfile
from environments.wasm.runs import CompileLimits
from wasm_apps import module_path

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "apps" / "tutorialapp" / "wasm" / "tutorialapp.wasm"
INSTANTIATE_GOAL_MS = 10.0


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def compile_and_load(scratch: Path, repeats: int) -> None:
    module = WasmModule.load(COMPONENT)
    profile = EngineProfile()
    engine = profile.build()
    data = COMPONENT.read_bytes()
    started = time.perf_counter()
    artifact = compile_artifact(profile, data, COMPONENT.name, CompileLimits(time_s=600), component=True)
    compile_s = time.perf_counter() - started
    cache = ComponentCache(scratch / "cache")
    cache.load(engine, profile, module.path, module.sha256)  # compiles once more, into this cache
    warm = []
    for _ in range(repeats):
        fresh = ComponentCache(scratch / "cache")  # a fresh worker: nothing in memory yet
        started = time.perf_counter()
        fresh.load(engine, profile, module.path, module.sha256)
        warm.append(time.perf_counter() - started)
    component, _ = cache.load(engine, profile, module.path, module.sha256)
    linker = wc.Linker(engine)
    linker.add_wasip2()
    instantiate = []
    for _ in range(repeats * 5):
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_fuel(1 << 40)
        store.set_epoch_deadline(1 << 30)
        started = time.perf_counter()
        linker.instantiate(store, component)
        instantiate.append(time.perf_counter() - started)
    goal = "met" if median_ms(instantiate) <= INSTANTIATE_GOAL_MS else "MISSED"
    print(f"component {len(data) / 1e6:.1f} MB, artifact {len(artifact) / 1e6:.1f} MB")
    print(f"  first compile (compiler process)      {compile_s:8.2f} s")
    print(f"  warm load from the cache (new worker) {median_ms(warm):8.1f} ms")
    print(
        f"  instantiate, warm worker              {median_ms(instantiate):8.2f} ms  (goal <= 10 ms: {goal})"
    )


async def compute_ms(app: WasmApp, work: Path, params: dict[str, object], repeats: int) -> tuple[float, int]:
    """Median wall time of a compute through the environment (ms, seen by the caller) and its fuel."""
    provider = WasmProviderApp(app)
    samples, fuel = [], 0
    for attempt in range(repeats):
        task_dir = ProviderTaskDir(work / f"{attempt}" / "t1")
        task_dir.prepare()
        task_dir.subtask_dir("s1").mkdir()
        started = time.perf_counter()
        _, usage = await provider.compute_with_usage(task_dir, "s1", dict(params))
        samples.append(time.perf_counter() - started)
        fuel = usage.fuel or 0
    return median_ms(samples), fuel


async def overhead_and_work(scratch: Path, repeats: int, nonces: int) -> None:
    env = WasmEnvironment(WasmConfig(cache_dir=scratch / "cache", max_parallel=1))
    await env.prepare()
    try:
        apps = {
            "component": WasmApp(WasmModule.load(COMPONENT), env),
            "C module": WasmApp(WasmModule.load(module_path("tutorialapp")), env),
        }
        empty = {"input": "bench", "difficulty": 40, "start": 0, "end": 0}
        work = {"input": "bench", "difficulty": 40, "start": 0, "end": nonces}
        results = {}
        for name, app in apps.items():
            await compute_ms(app, scratch / "warm" / name, empty, 2)  # compile, start the worker
            results[name] = (
                await compute_ms(app, scratch / "empty" / name, empty, repeats),
                await compute_ms(app, scratch / "work" / name, work, repeats),
            )
    finally:
        await env.clean_up()
    native = []
    for _ in range(repeats):
        started = time.perf_counter()
        pow.search("bench", 40, 0, nonces)
        native.append(time.perf_counter() - started)
    (c_empty, _), (c_work, c_fuel) = results["C module"]
    (p_empty, _), (p_work, p_fuel) = results["component"]
    print("fixed overhead of a subtask (empty range, through the worker pool)")
    print(f"  C module {c_empty:8.2f} ms   component {p_empty:8.2f} ms   ratio {p_empty / c_empty:6.1f}x")
    print(f"PoW over {nonces} nonces (minus the fixed overhead)")
    python_in_wasm, c_wasm = p_work - p_empty, c_work - c_empty
    print(f"  native CPython {median_ms(native):8.1f} ms")
    ratio = python_in_wasm / median_ms(native)
    print(f"  Python in the component {python_in_wasm:8.1f} ms   {ratio:5.2f}x native CPython")
    print(f"  C module {c_wasm:8.1f} ms   component / C module {python_in_wasm / c_wasm:6.1f}x")
    print(f"  fuel: component {p_fuel}, C module {c_fuel} ({p_fuel / max(c_fuel, 1):.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--nonces", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-components-") as scratch:
        compile_and_load(Path(scratch), args.repeats)
        asyncio.run(overhead_and_work(Path(scratch), args.repeats, args.nonces))


if __name__ == "__main__":
    main()
