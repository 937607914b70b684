"""What a requestor app's calls cost per subtask as its task grows: tutorialapp's component, through the
wasm environment's worker pool as the node's app server calls it (no gRPC hop).

Per subtask the node asks NextSubtask, Verify (of an honest result written here) and HasPendingSubtasks.
Measured for two task sizes, with warm instances (the node's default: a task's calls share a live
instance, `ComponentRun.warm`) and with a fresh instance a call, in the same run. Prints median ms per
call and the ratios: big vs small task (1.0: a call's cost does not grow with the task) and fresh vs
warm. Asserts nothing.

    python bench/requestor_calls.py [--sizes A B] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from apps.sdk import VerifyResult
from apps.sdk.workdir import RequestorTaskDir
from apps.tutorialapp import pow
from environments.wasm import WasmConfig, WasmEnvironment
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmRequestorApp

ROOT = Path(__file__).resolve().parents[1]
COMPONENT = ROOT / "apps" / "tutorialapp" / "wasm" / "tutorialapp.wasm"
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=(400, 1600), metavar=("A", "B"))
    parser.add_argument("--calls", type=int, default=100, help="subtasks timed in each task")
    args = parser.parse_args()
    asyncio.run(main(tuple(args.sizes), args.calls))
