"""The wasm adapter's batches (apps/sdk/batch.py): one guest invocation per batch for a command module that
has the batch operations, none for one that lacks them (its first batch exits non-zero: from then on the SDK
server runs the single calls) nor for a component (its WIT has no batch functions)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from apps.sdk.errors import AppError
from apps.sdk.handlers import VerifyResult
from apps.sdk.workdir import RequestorTaskDir
from environments.wasm import WasmEnvironment
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmRequestorApp
from environments.wasm.runs import WasmResult

from . import guests
from .support import GuestFactory

ROOT = Path(__file__).resolve().parents[3]
C_TUTORIALAPP = ROOT / "wasm_apps" / "tutorialapp" / "tutorialapp.wasm"
COMPONENT_TUTORIALAPP = ROOT / "apps" / "tutorialapp" / "wasm" / "tutorialapp.wasm"
POW = {"input": "batch", "difficulty": 4, "subtasks": 4}


class CountingApp(WasmApp):
    """A WasmApp that records the operation of every run it makes."""

    def __init__(self, module: WasmModule, environment: WasmEnvironment) -> None:
        super().__init__(module, environment)
        self.runs: list[str] = []

    async def run(self, operation: str, request: dict[str, Any], **options: Any) -> WasmResult:
        self.runs.append(operation)
        return await super().run(operation, request, **options)


def task_dir(tmp_path: Path) -> RequestorTaskDir:
    directory = RequestorTaskDir(tmp_path / "requestor" / "task-1")
    directory.prepare()
    return directory


def test_a_batch_is_one_invocation_of_the_c_module(wasm_env: WasmEnvironment, tmp_path: Path) -> None:
    app = CountingApp(WasmModule.load(C_TUTORIALAPP), wasm_env)
    requestor, directory = WasmRequestorApp(app), task_dir(tmp_path)

    async def scenario() -> None:
        await requestor.create_task(directory, 8, POW)
        batch = await requestor.next_subtasks(directory, [(f"s{i}", "node") for i in range(3)])
        assert batch is not None and all(subtask is not None for subtask in batch.subtasks)
        verdicts = await requestor.verify_batch(directory, ["s0", "s1"])
        assert verdicts is not None and [verdict for verdict, _ in verdicts] == [VerifyResult.FAILURE] * 2

    asyncio.run(scenario())
    assert app.runs == ["create_task", "next_subtasks", "verify_batch"]


def test_a_module_without_batch_operations_is_asked_once(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    lacking = guest(
        "lacking", guests.fixed_output(stderr=b"unknown operation 'next_subtasks'\n", exit_code=2)
    )
    app = CountingApp(WasmModule.load(lacking.path), wasm_env)
    requestor, directory = WasmRequestorApp(app), task_dir(tmp_path)

    async def scenario() -> None:
        assert await requestor.next_subtasks(directory, [("s0", "node")]) is None
        assert await requestor.verify_batch(directory, ["s0"]) is None
        assert await requestor.next_subtasks(directory, [("s1", "node")]) is None

    asyncio.run(scenario())
    assert app.runs == ["next_subtasks"]


def test_a_component_is_never_asked_for_a_batch(wasm_env: WasmEnvironment, tmp_path: Path) -> None:
    app = CountingApp(WasmModule.load(COMPONENT_TUTORIALAPP), wasm_env)
    requestor, directory = WasmRequestorApp(app), task_dir(tmp_path)
    assert asyncio.run(requestor.next_subtasks(directory, [("s0", "node")])) is None
    assert app.runs == []


@pytest.mark.parametrize(
    ("stdout", "exit_code", "error"),
    [
        (b"not json", 0, "replied to next_subtasks with something that is not JSON"),
        (b'{"replies": "none"}', 0, "replied to next_subtasks with an invalid reply"),
        (b'{"error": {"code": "INTERNAL", "message": "plan lost"}}', 0, "plan lost"),
    ],
)
def test_a_module_that_has_batches_fails_them_as_it_fails_single_calls(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path, stdout: bytes, exit_code: int, error: str
) -> None:
    broken = guest("broken", guests.fixed_output(stdout=stdout, exit_code=exit_code))
    requestor = WasmRequestorApp(WasmApp(WasmModule.load(broken.path), wasm_env))
    with pytest.raises(AppError, match=error):
        asyncio.run(requestor.next_subtasks(task_dir(tmp_path), [("s0", "node")]))
