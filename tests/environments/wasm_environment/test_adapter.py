"""The WASM app adapter: the guest contract of docs/wasm-apps.md, error mapping, and serving over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from grpclib.exceptions import GRPCError

from apps.sdk.client import ProviderAppClient, RequestorAppClient
from apps.sdk.errors import AppError, FailedPrecondition, InvalidArgument, NotFound
from apps.sdk.handlers import CreatedTask, Subtask, VerifyResult
from apps.sdk.process import AppProcess
from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir
from environments.wasm import WasmEnvironment
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmProviderApp, WasmRequestorApp
from environments.wasm.runs import DEFAULT_FUEL, DEFAULT_WALL_TIME_S

from . import guests
from .support import GuestFactory

TASK_ID = "task-1"


def requestor_for(env: WasmEnvironment, module: guests.Guest) -> WasmRequestorApp:
    return WasmRequestorApp(WasmApp(WasmModule.load(module.path), env))


@pytest.fixture
def task_dir(tmp_path: Path) -> RequestorTaskDir:
    directory = RequestorTaskDir(tmp_path / "requestor" / TASK_ID)
    directory.prepare()
    return directory


@pytest.fixture
def probe(guest: GuestFactory) -> guests.Guest:
    return guest("probe", guests.probe())


def saved(directory: Path) -> tuple[Any, bytes, bytes]:
    """What the probe saved: the request JSON, argv and env (NUL-separated)."""
    return (
        json.loads((directory / "request.json").read_bytes()),
        (directory / "argv.txt").read_bytes(),
        (directory / "env.txt").read_bytes(),
    )


def test_create_task_follows_the_contract(
    wasm_env: WasmEnvironment, probe: guests.Guest, task_dir: RequestorTaskDir
) -> None:
    app = requestor_for(wasm_env, probe)
    created = asyncio.run(app.create_task(task_dir, 3, {"input": "hi", "difficulty": 4}))
    limits = {"fuel": DEFAULT_FUEL, "wall_time_s": DEFAULT_WALL_TIME_S}  # the probe sets none
    prerequisites = {"module": "probe.wasm", "sha256": probe.sha256, "limits": limits}
    assert created == CreatedTask(env_id="wasm", prerequisites=prerequisites, min_memory_mib=1.5)
    request, argv, env = saved(task_dir.task_outputs)
    assert request == {
        "task_id": TASK_ID,
        "max_subtasks_count": 3,
        "params": {"input": "hi", "difficulty": 4},
    }
    assert argv == b"app\0create_task\0"
    assert env == b"TASKAPI_OPERATION=create_task\0"
    assert list(task_dir.task_inputs.iterdir()) == []  # the probe's write into /task/task_inputs was refused


RequestorCall = Callable[[WasmRequestorApp, RequestorTaskDir], Coroutine[Any, Any, Any]]


@pytest.mark.parametrize(
    ("operation", "call", "fields", "answer"),
    [
        (
            "next_subtask",
            lambda app, d: app.next_subtask(d, "sub-1", "node-9"),
            {"subtask_id": "sub-1", "opaque_node_id": "node-9"},
            Subtask(params={"n": 1}, resources=["part-0"]),
        ),
        (
            "verify",
            lambda app, d: app.verify(d, "sub-1"),
            {"subtask_id": "sub-1"},
            (VerifyResult.SUCCESS, "probed"),
        ),
        (
            "discard_subtasks",
            lambda app, d: app.discard_subtasks(d, ["sub-1", "sub-2"]),
            {"subtask_ids": ["sub-1", "sub-2"]},
            [],
        ),
        ("has_pending_subtasks", lambda app, d: app.has_pending_subtasks(d), {}, False),
        ("abort_task", lambda app, d: app.abort_task(d), {}, None),
        ("abort_subtask", lambda app, d: app.abort_subtask(d, "sub-1"), {"subtask_id": "sub-1"}, None),
    ],
)
def test_requestor_operations_follow_the_contract(
    wasm_env: WasmEnvironment,
    probe: guests.Guest,
    task_dir: RequestorTaskDir,
    operation: str,
    call: RequestorCall,
    fields: dict[str, Any],
    answer: object,
) -> None:
    assert asyncio.run(call(requestor_for(wasm_env, probe), task_dir)) == answer
    saved_request, argv, env = saved(task_dir.task_outputs)
    assert saved_request == {"task_id": TASK_ID, **fields}
    assert argv == f"app\0{operation}\0".encode()
    assert env == f"TASKAPI_OPERATION={operation}\0".encode()


def test_compute_follows_the_contract(wasm_env: WasmEnvironment, probe: guests.Guest, tmp_path: Path) -> None:
    task_dir = ProviderTaskDir(tmp_path / "provider" / TASK_ID)
    task_dir.prepare()
    (task_dir.subtask_inputs / "part-0").write_text("resource")
    task_dir.subtask_dir("sub-1").mkdir()
    app = WasmProviderApp(WasmApp(WasmModule.load(probe.path), wasm_env))
    output = asyncio.run(app.compute(task_dir, "sub-1", {"n": 1}))
    assert output == Path("sub-1", "request.json")
    request, argv, env = saved(task_dir.subtask_dir("sub-1"))
    assert request == {"task_id": TASK_ID, "subtask_id": "sub-1", "params": {"n": 1}}
    assert (argv, env) == (b"app\0compute\0", b"TASKAPI_OPERATION=compute\0")
    assert sorted(p.name for p in task_dir.subtask_inputs.iterdir()) == ["part-0"]  # /inputs is read-only


def test_compute_with_usage_reports_what_the_run_used(
    wasm_env: WasmEnvironment, probe: guests.Guest, tmp_path: Path
) -> None:
    task_dir = ProviderTaskDir(tmp_path / TASK_ID)
    task_dir.prepare()
    task_dir.subtask_dir("sub-1").mkdir()
    app = WasmProviderApp(WasmApp(WasmModule.load(probe.path), wasm_env))
    output, usage = asyncio.run(app.compute_with_usage(task_dir, "sub-1", {}))
    assert output == Path("sub-1", "request.json")
    assert usage.fuel is not None and usage.fuel > 0
    assert usage.peak_memory_bytes == 4 * 65536


def test_benchmark_is_reported_work_per_second(wasm_env: WasmEnvironment, probe: guests.Guest) -> None:
    score = asyncio.run(requestor_for(wasm_env, probe).run_benchmark(Path(".")))
    assert score > 0


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("INVALID_ARGUMENT", InvalidArgument),
        ("NOT_FOUND", NotFound),
        ("FAILED_PRECONDITION", FailedPrecondition),
        ("INTERNAL", AppError),
    ],
)
def test_error_replies_map_to_sdk_errors(
    wasm_env: WasmEnvironment,
    guest: GuestFactory,
    task_dir: RequestorTaskDir,
    code: str,
    error: type[AppError],
) -> None:
    reply = json.dumps({"error": {"code": code, "message": "difficulty must be <= 64"}}).encode()
    app = requestor_for(wasm_env, guest("refuser", guests.fixed_output(reply)))
    with pytest.raises(error, match=r"^difficulty must be <= 64$") as raised:
        asyncio.run(app.create_task(task_dir, 1, {}))
    assert type(raised.value) is error


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            guests.fixed_output(b"", b"log line\nboom: bad state\n", exit_code=3),
            "exited with code 3; stderr: log line",
        ),
        (guests.UNREACHABLE, "failed in verify: wasm trap: wasm `unreachable` instruction executed"),
        (guests.fixed_output(b"not json"), "replied to verify with something that is not JSON"),
        (guests.fixed_output(b"[1, 2]"), "replied to verify with JSON that is not an object"),
        (guests.fixed_output(b'{"result": "MAYBE"}'), "invalid reply \\(result: Input should be"),
        (
            guests.fixed_output(b'{"error": {"code": "TEAPOT", "message": "x"}}'),
            "error.code: Input should be",
        ),
        (guests.MISSING_IMPORT, "could not run verify: module broken.wasm imports env::launch_missiles"),
    ],
)
def test_broken_guests_are_internal_errors_with_the_reason(
    wasm_env: WasmEnvironment, guest: GuestFactory, task_dir: RequestorTaskDir, source: str, message: str
) -> None:
    app = requestor_for(wasm_env, guest("broken", source))
    with pytest.raises(AppError, match=message) as raised:
        asyncio.run(app.verify(task_dir, "sub-1"))
    assert type(raised.value) is AppError


@pytest.mark.parametrize("output", ["../../etc/passwd", "/etc/passwd", ""])
def test_compute_output_must_stay_under_output(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path, output: str
) -> None:
    escaping = guest("escape", guests.fixed_output(json.dumps({"output": output}).encode()))
    task_dir = ProviderTaskDir(tmp_path / TASK_ID)
    task_dir.prepare()
    task_dir.subtask_dir("sub-1").mkdir()
    app = WasmProviderApp(WasmApp(WasmModule.load(escaping.path), wasm_env))
    with pytest.raises(AppError, match="it must be a relative path under /output"):
        asyncio.run(app.compute(task_dir, "sub-1", {}))


def test_serving_refuses_a_module_with_the_wrong_sha256(probe: guests.Guest) -> None:
    wrong = "f" * 64
    completed = subprocess.run(
        [sys.executable, "-m", "environments.wasm", "--sha256", wrong, str(probe.path), "requestor", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert f"but {wrong} was expected" in completed.stderr


def test_the_probe_served_over_grpc(
    probe: guests.Guest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKAPI_WASM_CACHE", str(tmp_path / "cache"))
    command = [sys.executable, "-m", "environments.wasm", str(probe.path)]

    async def scenario() -> None:
        requestor = AppProcess(command, "requestor", tmp_path / "requestor")
        provider = AppProcess(command, "provider", tmp_path / "provider" / TASK_ID)
        client = RequestorAppClient(await requestor.start())
        provider_client = ProviderAppClient(await provider.start())
        try:
            created = await client.create_task(TASK_ID, 2, {"x": 1})
            assert (created.env_id, created.prerequisites["sha256"]) == ("wasm", probe.sha256)
            subtask = await client.next_subtask(TASK_ID, "sub-1", "node-1")
            assert subtask == Subtask(params={"n": 1}, resources=["part-0"])
            output = await provider_client.compute(TASK_ID, "sub-1", subtask.params)
            assert output == Path("sub-1", "request.json")
            delivered = tmp_path / "requestor" / TASK_ID / "subtask_outputs" / "sub-1"
            delivered.mkdir(parents=True)
            shutil.copy(tmp_path / "provider" / TASK_ID / output, delivered)
            assert await client.verify(TASK_ID, "sub-1") == (VerifyResult.SUCCESS, "probed")
        finally:
            for app_client, process in ((client, requestor), (provider_client, provider)):
                with contextlib.suppress(GRPCError):
                    await app_client.shutdown()
                app_client.close()
                await process.wait(timeout=30)

    asyncio.run(scenario())
