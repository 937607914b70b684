"""What a requestor app's calls cost per subtask as its task grows: tutorialapp's component, through the
wasm environment's worker pool as the node's app server calls it (no gRPC hop).

Per subtask the node asks NextSubtask, Verify (of an honest result written here) and HasPendingSubtasks.
Measured for two task sizes, with warm instances (the node's default: a task's calls share a live
instance, `ComponentRun.warm`) and with a fresh instance a call, in the same run. Prints median ms per
call and the ratios: big vs small task (1.0: a call's cost does not grow with the task) and fresh vs
warm. Asserts nothing.

    python bench/requestor_calls.py [--sizes A B] [--calls N]

`--batches` measures instead what batching the calls saves (RequestorAppBatch, docs/protocol.md): real app
servers over loopback gRPC, the C module (`python -m environments.wasm`) and the Python tutorialapp, each
asked for the same subtasks of a task of `--sizes A` ranges as single calls (NextSubtask, Verify per
subtask) and as batches of 1, 8 and 32 (NextSubtasks, VerifyBatch), every mode twice, interleaved. Prints
per subtask the wall ms and the CPU ms of the server (with its wasm workers) and of this client, and the
ratios singles vs batch (above 1: the batch is cheaper).

    python bench/requestor_calls.py --batches [--sizes A B] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from apps.sdk import VerifyResult
from apps.sdk.client import RequestorAppClient
from apps.sdk.process import AppProcess, python_app_command
from apps.sdk.workdir import RequestorTaskDir
from apps.tutorialapp import pow
from environments.wasm import WasmConfig, WasmEnvironment
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmRequestorApp

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "apps" / "tutorialapp" / "wasm" / "tutorialapp.wasm"
C_MODULE = ROOT / "wasm_apps" / "tutorialapp" / "tutorialapp.wasm"
SERVERS = {
    "C module": [sys.executable, "-m", "environments.wasm", str(C_MODULE)],
    "Python app": python_app_command("apps.tutorialapp"),
}
BATCH_SIZES = (1, 8, 32)
TEXT, DIFFICULTY = "bench-trivial-148", 12
CALLS = ("NextSubtask", "Verify", "HasPendingSubtasks")


def deliver(task_dir: RequestorTaskDir, subtask_id: str, params: dict[str, int]) -> None:
    """The honest result of the subtask's range (searched at most to 2**DIFFICULTY)."""
    start, end = params["start"], params["end"]
    nonce = pow.search(TEXT, DIFFICULTY, start, min(end, 2**DIFFICULTY))
    digest = None if nonce is None else pow.digest(TEXT, nonce).hex()
    output = task_dir.subtask_outputs(subtask_id)
    output.mkdir(parents=True, exist_ok=True)
    (output / "result.json").write_text(
        json.dumps({"start": start, "end": end, "nonce": nonce, "hash": digest})
    )


async def per_call_ms(app: WasmRequestorApp, root: Path, size: int, calls: int) -> dict[str, float]:
    """Median ms of each call over the first `calls` subtasks of a task of `size` ranges."""
    task_dir = RequestorTaskDir(root)
    task_dir.prepare()
    await app.create_task(task_dir, size, {"input": TEXT, "difficulty": DIFFICULTY, "subtasks": size})
    samples: dict[str, list[float]] = {name: [] for name in CALLS}
    for number in range(calls):
        subtask_id = f"sub-{number}"
        began = time.perf_counter()
        subtask = await app.next_subtask(task_dir, subtask_id, "bench")
        samples["NextSubtask"].append(time.perf_counter() - began)
        assert subtask is not None
        deliver(task_dir, subtask_id, subtask.params)
        began = time.perf_counter()
        verdict, reason = await app.verify(task_dir, subtask_id)
        samples["Verify"].append(time.perf_counter() - began)
        assert verdict is VerifyResult.SUCCESS, reason
        began = time.perf_counter()
        await app.has_pending_subtasks(task_dir)
        samples["HasPendingSubtasks"].append(time.perf_counter() - began)
    return {name: 1000 * statistics.median(values) for name, values in samples.items()}


async def main(sizes: tuple[int, int], calls: int) -> None:
    with tempfile.TemporaryDirectory(prefix="taskapi-bench-") as tmp:
        env = WasmEnvironment(WasmConfig(cache_dir=Path(tmp) / "cache"))
        await env.prepare()
        app = WasmApp(WasmModule.load(COMPONENT), env)
        results: dict[tuple[bool, int], dict[str, float]] = {}
        try:
            for warm in (True, False):
                for size in sizes:
                    root = Path(tmp) / f"{'warm' if warm else 'fresh'}-{size}" / "task"
                    ms = await per_call_ms(WasmRequestorApp(app, warm=warm), root, size, calls)
                    results[warm, size] = ms
                    parts = ", ".join(f"{name} {value:.2f}" for name, value in ms.items())
                    label = "warm instance " if warm else "fresh instance"
                    print(f"{label} {size:5d} ranges: ms a call: {parts}", flush=True)
        finally:
            await env.clean_up()
    small, big = sizes
    for warm in (True, False):
        total = {size: sum(results[warm, size].values()) for size in sizes}
        label = "warm" if warm else "fresh"
        print(
            f"{label}: {total[small]:.1f} ms a subtask at {small}, {total[big]:.1f} at {big}:"
            f" {big} vs {small} {total[big] / total[small]:.2f}x (1.0: independent of the task's size)"
        )
    for size in sizes:
        ratio = sum(results[False, size].values()) / sum(results[True, size].values())
        print(f"fresh vs warm at {size} ranges: {ratio:.1f}x")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by process `pid` and its live descendants (a wasm server's workers)."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total = {pid}, 0.0
    for _ in range(4):  # server -> worker pool -> workers: a few generations
        tree |= {child for child, (parent, _) in stats.items() if parent in tree}
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


def groups(ids: list[str], size: int) -> Iterator[list[str]]:
    for first in range(0, len(ids), size):
        yield ids[first : first + size]


async def one_mode(
    client: RequestorAppClient, server: AppProcess, task_id: str, size: int, calls: int, batch: int | None
) -> tuple[float, float, float]:
    """Wall, server CPU and client CPU seconds a subtask for `calls` subtasks of a fresh task asked singly
    (`batch` None) or in batches of `batch`."""
    await client.create_task(task_id, size, {"input": TEXT, "difficulty": DIFFICULTY, "subtasks": size})
    task_dir = RequestorTaskDir(server.work_dir / task_id)
    ids = [f"sub-{number}" for number in range(calls)]
    assert server.pid is not None
    wall, server_cpu, client_cpu = time.perf_counter(), tree_cpu_s(server.pid), time.process_time()
    for group in groups(ids, batch or 1):
        if batch is None:
            subtasks = [await client.next_subtask(task_id, subtask_id, "bench") for subtask_id in group]
        else:
            subtasks = await client.next_subtasks(task_id, [(subtask_id, "bench") for subtask_id in group])
        for subtask_id, subtask in zip(group, subtasks, strict=True):
            assert subtask is not None, f"no range for {subtask_id}"
            deliver(task_dir, subtask_id, subtask.params)
        if batch is None:
            verdicts = [(await client.verify(task_id, subtask_id))[0] for subtask_id in group]
        else:
            verdicts = [verdict for verdict, _, _ in await client.verify_batch(task_id, group)]
        assert verdicts == [VerifyResult.SUCCESS] * len(group), verdicts
    return (
        (time.perf_counter() - wall) / calls,
        (tree_cpu_s(server.pid) - server_cpu) / calls,
        (time.process_time() - client_cpu) / calls,
    )


async def batches(size: int, calls: int) -> None:
    """Singles vs batches of BATCH_SIZES against each of SERVERS, every mode twice, interleaved."""
    modes: list[int | None] = [None, *BATCH_SIZES]
    with tempfile.TemporaryDirectory(prefix="taskapi-bench-") as tmp:
        os.environ["TASKAPI_WASM_CACHE"] = str(Path(tmp) / "wasm-cache")
        for name, command in SERVERS.items():
            server = AppProcess(command, "requestor", Path(tmp) / name.replace(" ", "-"))
            client = RequestorAppClient(await server.start(timeout=60))
            try:
                await one_mode(client, server, "warm-up", size, 8, None)
                runs: dict[int | None, list[tuple[float, float, float]]] = {mode: [] for mode in modes}
                for turn in range(2):
                    for mode in modes:
                        runs[mode].append(
                            await one_mode(client, server, f"t{turn}-{mode}", size, calls, mode)
                        )
            finally:
                client.close()
                await server.kill()
            best = {mode: [min(values) for values in zip(*runs[mode], strict=True)] for mode in modes}
            for mode in modes:
                wall, server_cpu, client_cpu = best[mode]
                label = "singles" if mode is None else f"batch {mode:2d}"
                ratios = (
                    ""
                    if mode is None
                    else "; singles vs this: "
                    + ", ".join(f"{a / b:.2f}x" for a, b in zip(best[None], best[mode], strict=True))
                )
                print(
                    f"{name:10s} {label}: ms a subtask: wall {1000 * wall:.2f}, server CPU"
                    f" {1000 * server_cpu:.2f}, client CPU {1000 * client_cpu:.2f}{ratios}",
                    flush=True,
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=(400, 1600), metavar=("A", "B"))
    parser.add_argument("--calls", type=int, default=100, help="subtasks timed in each task")
    parser.add_argument("--batches", action="store_true", help="singles vs batches (see above)")
    args = parser.parse_args()
    if args.batches:
        asyncio.run(batches(args.sizes[0], args.calls - args.calls % max(BATCH_SIZES) or max(BATCH_SIZES)))
    else:
        asyncio.run(main(tuple(args.sizes), args.calls))
