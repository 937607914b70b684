"""The shipped gWASM apps on the node: whole tasks on the embedded node, and deterministic subtasks."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from apps.sdk.handlers import Subtask
from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir
from apps.tutorialapp import pow
from environments.wasm import WasmConfig, WasmResult
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmRequestorApp
from protos import node_pb2 as npb
from runtime.node.compute import WasmRunner
from runtime.node.embedded import run_embedded
from runtime.node.runners import builtin_whitelist
from wasm_apps import module_path
from wasm_apps.run import ModuleHost

from .support import make_environment

TASKS: dict[str, dict[str, Any]] = {
    "tutorialapp": {"input": "hello", "difficulty": 10, "subtasks": 3},
    "mandelbrot": {"width": 40, "height": 24, "parts": 3, "max_iter": 100},
}
HANG_GUARD_S = 180.0


def smallest_nonce(text: str, difficulty: int) -> int:
    start, step = 0, 2**difficulty
    while (nonce := pow.search(text, difficulty, start, start + step)) is None:
        start += step
    return nonce


def run_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: str) -> npb.TaskStatus:
    """One task of a shipped wasm app on the embedded node with two providers (a compile cache of its own)."""
    monkeypatch.setenv("TASKAPI_WASM_CACHE", str(tmp_path / "cache"))
    embedded = run_embedded(
        app,
        "wasm",
        TASKS[app],
        data_dir=tmp_path / "node",
        providers=2,
        capacity=1,
        runners=lambda: [WasmRunner()],
        whitelist=builtin_whitelist(),
        max_subtasks=8,
    )
    status = asyncio.run(asyncio.wait_for(embedded, HANG_GUARD_S))
    assert status.state == "finished", status.reason
    assert status.env_id == "wasm"
    return status


def test_tutorialapp_task_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = run_task(tmp_path, monkeypatch, "tutorialapp")
    result = json.loads((Path(status.outputs_dir) / "result.json").read_text())
    nonce = smallest_nonce("hello", 10)
    assert result == {"nonce": nonce, "hash": pow.digest("hello", nonce).hex()}


def test_mandelbrot_task_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = run_task(tmp_path, monkeypatch, "mandelbrot")
    assert list(status.outputs) == ["image.png"]
    assert (Path(status.outputs_dir) / "image.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert dict(status.subtasks_by_state)["accepted"] == 3


def compute_on_a_fresh_host(
    root: Path, module: Path, task_dir: RequestorTaskDir, subtask: Subtask
) -> tuple[WasmResult, bytes]:
    """Compute `sub-1` of task `t-1` as a provider does, on a host of its own (own worker and compile
    cache, the subtask's resources copied in): its run and its output file."""
    provider_dir = ProviderTaskDir(root / "t-1")
    provider_dir.prepare()
    for name in subtask.resources:
        shutil.copy(task_dir.subtask_inputs / name, provider_dir.subtask_inputs / name)
    with ModuleHost(module, WasmConfig(cache_dir=root / "cache", max_parallel=1)) as host:
        computed = host.run("compute", {"subtask_id": "sub-1", "params": subtask.params}, provider_dir.root)
    assert computed.result.ok and computed.reply is not None, computed.result.describe_failure()
    return computed.result, (provider_dir.subtask_dir("sub-1") / computed.reply["output"]).read_bytes()


@pytest.mark.parametrize("app_name", sorted(TASKS))
def test_a_subtask_gives_the_same_bytes_and_fuel_on_two_fresh_runtimes(tmp_path: Path, app_name: str) -> None:
    module = WasmModule.load(module_path(app_name))
    env = make_environment(tmp_path / "requestor-cache", max_parallel=1)
    try:
        task_dir = RequestorTaskDir(tmp_path / "requestor" / "t-1")
        task_dir.prepare()
        requestor = WasmRequestorApp(WasmApp(module, env))
        asyncio.run(requestor.create_task(task_dir, 8, TASKS[app_name]))
        subtask = asyncio.run(requestor.next_subtask(task_dir, "sub-1", "node"))
    finally:
        asyncio.run(env.clean_up())
    assert subtask is not None
    (first, first_output), (second, second_output) = (
        compute_on_a_fresh_host(tmp_path / side, module.path, task_dir, subtask) for side in ("a", "b")
    )
    assert first_output == second_output and len(first_output) > 0
    assert first.stdout == second.stdout
    assert first.fuel == second.fuel > 0
