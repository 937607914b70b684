"""The wasm environment's own costs, measured in one run and printed with ratios.

1. Compile cache: cold compile (read, sha256, compile, serialize, store) against a warm load from disk
   (HMAC check + deserialize, a fresh worker's first run) and an in-memory hit (every later run), for
   the shipped apps and a synthetic ~1.5 MB module. Goal: warm load <= 2 ms.
2. Per-invocation overhead: one tutorialapp `compute` as measured inside the worker (instantiate + run,
   the compute itself), through the worker pool (`WasmEnvironment.run`), and through the app adapter over
   gRPC (`ProviderApp.Compute` on `python -m environments.wasm`); plus a trivial requestor RPC and the
   start of a fresh worker. Goal: overhead small against the compute.

The PoW wasm-vs-native ratio is `bench/pow_native_vs_wasm.py`.

    python bench/wasm_env.py [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from importlib import metadata
from pathlib import Path

import wasmtime

from apps.sdk.client import ProviderAppClient, RequestorAppClient
from apps.sdk.process import AppProcess
from apps.sdk.workdir import ProviderTaskDir
from environments.wasm import Determinism, WasmConfig, WasmEnvironment, WasmRun
from environments.wasm.app_adapter import WasmModule, provider_preopens
from environments.wasm.cache import ModuleCache
from environments.wasm.engine import EngineProfile
from wasm_apps import module_path

WARM_GOAL_MS = 2.0
POW_TASK = {"input": "bench", "difficulty": 20, "subtasks": 4}


def synthetic_module(functions: int = 4000) -> bytes:
    """A WASI command with many mid-sized functions (about 1.5 MB of code)."""
    body = " ".join(
        "(local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005)) (local.get $x)))"
        for _ in range(40)
    )
    funcs = " ".join(
        f"(func $f{i} (param $x i64) (result i64) {body} (local.get $x))" for i in range(functions)
    )
    return bytes(wasmtime.wat2wasm(f'(module (memory (export "memory") 1) {funcs} (func (export "_start")))'))


def ms(seconds: float) -> float:
    return seconds * 1000


def median_ms(samples: list[float]) -> float:
    return ms(statistics.median(samples))


def min_ms(samples: list[float]) -> float:
    return ms(min(samples))


def bench_cache(name: str, module: Path, repeats: int) -> None:
    sha256 = hashlib.sha256(module.read_bytes()).hexdigest()
    profile = EngineProfile()
    engine = profile.build()
    cold, disk, memory = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            cache_dir = Path(scratch) / "cache"
            started = time.perf_counter()
            ModuleCache(cache_dir).load(engine, profile, module, sha256)
            cold.append(time.perf_counter() - started)
            fresh = ModuleCache(cache_dir)
            started = time.perf_counter()
            fresh.load(engine, profile, module, sha256)
            disk.append(time.perf_counter() - started)
            started = time.perf_counter()
            fresh.load(engine, profile, module, sha256)
            memory.append(time.perf_counter() - started)
    size_kib = module.stat().st_size / 1024
    verdict = f"goal <= {WARM_GOAL_MS:g} ms: " + ("met" if median_ms(disk) <= WARM_GOAL_MS else "missed")
    print(
        f"  {name:<12} {size_kib:8.0f} KiB  cold {median_ms(cold):8.2f} ms"
        f"   warm (disk) {median_ms(disk):6.3f} ms ({verdict})"
        f"   warm (memory) {median_ms(memory):6.4f} ms   cold/warm {min(cold) / min(disk):7.0f}x"
    )


async def timed(call: Awaitable[object]) -> float:
    """Seconds `call` (a coroutine not yet started) takes."""
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


def compute_run(module: WasmModule, provider_dir: ProviderTaskDir, params: dict[str, object]) -> WasmRun:
    """The invocation the adapter makes for Compute of subtask sub-1."""
    request = {"task_id": "bench-task", "subtask_id": "sub-1", "params": params}
    return WasmRun(
        module=module.path,
        sha256=module.sha256,
        argv=("app", "compute"),
        env=(("TASKAPI_OPERATION", "compute"),),
        stdin=json.dumps(request).encode(),
        preopens=provider_preopens(provider_dir, "sub-1"),
        determinism=Determinism("bench-task/sub-1"),
    )


async def bench_overhead(root: Path, repeats: int) -> None:
    """The three ways to run one compute take turns, so a busy machine slows them alike."""
    module = WasmModule.load(module_path("tutorialapp"))
    env = WasmEnvironment(WasmConfig(cache_dir=root / "cache", max_parallel=1))
    await env.prepare()
    command = [sys.executable, "-m", "environments.wasm", str(module.path)]
    requestor = AppProcess(command, "requestor", root / "grpc-requestor")
    provider = AppProcess(command, "provider", root / "grpc-provider" / "bench-task")
    try:
        first_compile = await timed(env.compile(module.path, module.sha256))
        server_start = time.perf_counter()
        client = RequestorAppClient(await requestor.start())
        server_start = time.perf_counter() - server_start
        provider_client = ProviderAppClient(await provider.start())
        await client.create_task("bench-task", 4, POW_TASK)
        subtask = await client.next_subtask("bench-task", "sub-1", "bench")
        assert subtask is not None
        provider_dir = ProviderTaskDir(root / "provider" / "bench-task")
        provider_dir.prepare()
        provider_dir.subtask_dir("sub-1").mkdir()
        run = compute_run(module, provider_dir, subtask.params)
        await env.run(run)  # warm every worker first
        await provider_client.compute("bench-task", "sub-0", subtask.params)
        tiny = {**subtask.params, "end": int(subtask.params["start"]) + 16}
        inside, pool, grpc, trivial, tiny_grpc = [], [], [], [], []
        for round_ in range(repeats):
            started = time.perf_counter()
            result = await env.run(run)
            pool.append(time.perf_counter() - started)
            assert result.ok, result.describe_failure()
            inside.append(result.wall_ms / 1000)
            grpc.append(await timed(provider_client.compute("bench-task", f"r{round_}", subtask.params)))
            trivial.append(await timed(client.has_pending_subtasks("bench-task")))
            tiny_grpc.append(await timed(provider_client.compute("bench-task", f"t{round_}", tiny)))
    finally:
        await env.clean_up()
        for app_client, process in ((client, requestor), (provider_client, provider)):
            await app_client.shutdown()
            app_client.close()
            await process.wait(timeout=30)
    compute = median_ms(inside)
    print(f"  compute inside the worker (instantiate + run)   {compute:9.2f} ms   fuel {result.fuel:,}")
    for label, samples in (("through the worker pool", pool), ("through the adapter over gRPC", grpc)):
        overhead = median_ms(samples) - compute
        share = overhead / compute
        print(f"  {label:<46}  {median_ms(samples):9.2f} ms   overhead {overhead:6.2f} ms = {share:5.1%}")
    print(f"  trivial requestor RPC (has_pending_subtasks)    {median_ms(trivial):9.2f} ms per call, in all")
    print(
        f"  trivial Compute RPC (16 nonces)                 {median_ms(tiny_grpc):9.2f} ms per call, in all"
    )
    print(f"  fresh worker + first compile of the module      {ms(first_compile):9.2f} ms (once per worker)")
    print(
        f"  adapter server start to healthy (python -m)     {ms(server_start):9.2f} ms (per_call providers)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"wasmtime {metadata.version('wasmtime')}, compile cache (median of {args.repeats}):")
    with tempfile.TemporaryDirectory() as scratch:
        synthetic = Path(scratch) / "synthetic.wasm"
        synthetic.write_bytes(synthetic_module())
        for name, module in (
            ("tutorialapp", module_path("tutorialapp")),
            ("mandelbrot", module_path("mandelbrot")),
            ("synthetic", synthetic),
        ):
            bench_cache(name, module, args.repeats)
        print(f"per-invocation overhead (tutorialapp compute of {POW_TASK}; median of {args.repeats}):")
        asyncio.run(bench_overhead(Path(scratch), args.repeats))


if __name__ == "__main__":
    main()
