"""`python -m wasm_apps.run` and its `ModuleHost`: operations run on the node's wasm host, as nodes do."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from environments.wasm import WasmConfig
from environments.wasm.app_adapter import WASM_STATE_DIR
from tests.environments.wasm_environment.guests import PROBE_REPLY, entropy, probe, write_file, write_guest
from wasm_apps.run import BadInvocation, ModuleHost, main

REPO = Path(__file__).resolve().parents[2]
HostFactory = Callable[[str], ModuleHost]


@pytest.fixture
def host_of(tmp_path: Path) -> Iterator[HostFactory]:
    """Makes a host for a WAT guest (closed after the test), on a private compile cache."""
    hosts: list[ModuleHost] = []

    def make(source: str) -> ModuleHost:
        guest = write_guest(tmp_path, f"guest-{len(hosts)}", source)
        hosts.append(ModuleHost(guest.path, WasmConfig(cache_dir=tmp_path / "cache", max_parallel=1)))
        return hosts[-1]

    yield make
    for host in hosts:
        host.close()


def saved(directory: Path) -> tuple[Any, bytes, bytes]:
    """What the probe guest saved: the request JSON, argv and env (NUL-separated)."""
    return (
        json.loads((directory / "request.json").read_bytes()),
        (directory / "argv.txt").read_bytes(),
        (directory / "env.txt").read_bytes(),
    )


def test_requestor_operations_see_the_task_state_folder_as_task(host_of: HostFactory, tmp_path: Path) -> None:
    """`/task` is `<task dir>/wasm_state`, as on a requestor node, not the task dir itself."""
    task_dir = tmp_path / "requestor" / "t-1"
    result = host_of(write_file(b"state.txt")).run("create_task", {}, task_dir)
    assert result.exit_code == 0, result.stderr
    assert (task_dir / WASM_STATE_DIR / "state.txt").read_bytes() == b"pwned"
    assert not (task_dir / "state.txt").exists()
    assert sorted(p.name for p in task_dir.iterdir()) == sorted(
        [WASM_STATE_DIR, "task_inputs", "subtask_inputs", "subtask_outputs", "task_outputs"]
    )


def test_operations_get_the_request_argv_and_env_a_node_gives(host_of: HostFactory, tmp_path: Path) -> None:
    host = host_of(probe())
    task_dir = tmp_path / "requestor" / "t-1"
    asked = host.run("next_subtask", {"subtask_id": "s-1", "opaque_node_id": "n"}, task_dir)
    assert asked.reply == PROBE_REPLY
    request = {"task_id": "t-1", "subtask_id": "s-1", "opaque_node_id": "n"}
    assert saved(task_dir / "task_outputs") == (
        request,
        b"app\0next_subtask\0",
        b"TASKAPI_OPERATION=next_subtask\0",
    )

    provider_dir = tmp_path / "provider" / "t-1"
    computed = host.run("compute", {"subtask_id": "s-1", "params": {"n": 1}}, provider_dir)
    assert computed.reply == PROBE_REPLY and computed.fuel > 0
    computed_request = {"task_id": "t-1", "subtask_id": "s-1", "params": {"n": 1}}
    assert saved(provider_dir / "s-1") == (
        computed_request,
        b"app\0compute\0",
        b"TASKAPI_OPERATION=compute\0",
    )


def test_the_deterministic_profile_seeds_by_task_and_subtask(host_of: HostFactory, tmp_path: Path) -> None:
    """Randomness and clocks are the node's seeded ones: the same ids give the same bytes in any dir."""
    host = host_of(entropy())

    def stdout(task_dir: Path, subtask_id: str) -> bytes:
        result = host.run("verify", {"subtask_id": subtask_id}, task_dir)
        assert result.exit_code == 0, result.stderr
        return result.result.stdout

    first, again = stdout(tmp_path / "a" / "t-1", "s-1"), stdout(tmp_path / "b" / "t-1", "s-1")
    assert first == again and len(first) == 40
    assert stdout(tmp_path / "a" / "t-1", "s-2")[:16] != first[:16]
    assert stdout(tmp_path / "c" / "t-2", "s-1")[:16] != first[:16]


@pytest.mark.parametrize(
    ("operation", "request_", "task_dir", "message"),
    [
        ("create_task", {}, None, "create_task needs a task dir (--task DIR)"),
        ("compute", {"params": {}}, "t-1", "compute needs a subtask_id in the request"),
        (
            "verify",
            {"task_id": "other"},
            "t-1",
            "the request's task_id 'other' is not the task dir's name 't-1'",
        ),
        ("verify", {"subtask_id": 7}, "t-1", "the request's subtask_id must be a string, got 7"),
        ("compute", {"subtask_id": "../up"}, "t-1", "invalid subtask id '../up'"),
        ("verify", {}, "bad name", "invalid task id (the task dir's name) 'bad name'"),
    ],
)
def test_bad_invocations_are_refused_naming_what_is_wrong(
    host_of: HostFactory,
    tmp_path: Path,
    operation: str,
    request_: dict[str, Any],
    task_dir: str | None,
    message: str,
) -> None:
    host = host_of(probe())
    with pytest.raises(BadInvocation) as refused:
        host.run(operation, request_, None if task_dir is None else tmp_path / task_dir)
    assert message in str(refused.value)
    assert host.run("benchmark", {}).reply == PROBE_REPLY  # the host still runs


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["tutorialapp", "create_task", "--task", "{tmp}/t"], "{nope", "the request on stdin is not JSON"),
        (
            ["tutorialapp", "create_task", "--task", "{tmp}/t"],
            "[1]",
            "the request on stdin must be a JSON object",
        ),
        (
            ["no-such-app", "benchmark"],
            "{}",
            "unknown app 'no-such-app': wasm_apps has mandelbrot, tutorialapp",
        ),
        (["{tmp}/missing.wasm", "benchmark"], "{}", "missing.wasm"),
        (["tutorialapp", "verify"], "{}", "verify needs a task dir (--task DIR)"),
    ],
)
def test_the_command_refuses_bad_input_with_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    monkeypatch.setenv("TASKAPI_WASM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exited:
        main([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def run_command(tmp_path: Path, operation: str, task_dir: Path, request: dict[str, Any]) -> dict[str, Any]:
    """`python -m wasm_apps.run tutorialapp OPERATION --task DIR` as a person runs it; its JSON reply."""
    done = subprocess.run(
        [sys.executable, "-m", "wasm_apps.run", "tutorialapp", operation, "--task", str(task_dir)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TASKAPI_WASM_CACHE": str(tmp_path / "cache")},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "exit code 0, fuel " in done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


def test_the_readmes_hand_run_task_gives_the_answer(tmp_path: Path) -> None:
    """wasm_apps/README.md's commands: create, hand out, compute, deliver by hand, verify."""
    requestor, provider = tmp_path / "req" / "t", tmp_path / "prov" / "t"
    params = {"input": "hello", "difficulty": 8, "subtasks": 1}
    assert run_command(tmp_path, "create_task", requestor, {"max_subtasks_count": 4, "params": params}) == {
        "min_memory_mib": 64
    }
    subtask = run_command(tmp_path, "next_subtask", requestor, {"subtask_id": "s1", "opaque_node_id": "n"})
    computed = run_command(
        tmp_path, "compute", provider, {"subtask_id": "s1", "params": subtask["subtask"]["params"]}
    )
    assert computed == {"output": "result.json"}
    (requestor / "subtask_outputs" / "s1").mkdir()
    shutil.copy(provider / "s1" / "result.json", requestor / "subtask_outputs" / "s1")
    assert run_command(tmp_path, "verify", requestor, {"subtask_id": "s1"}) == {
        "result": "SUCCESS",
        "reason": "",
    }
    assert json.loads((requestor / "task_outputs" / "result.json").read_text())["nonce"] is not None
