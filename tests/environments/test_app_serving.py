"""Every environment serves an app build's servers through one protocol (`Environment.app_serving`), and the
node (`runtime.serving.serving_of`, the provider's `runner_of`) asks nothing else of it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.sdk.client import RequestorAppClient
from environments.app_serving import AppPayload, AppServing
from environments.base import (
    Capabilities,
    Environment,
    PayloadKind,
    Prerequisites,
    PrerequisitesRefused,
)
from environments.local import LocalEnvironment
from environments.registry import environment_ids
from environments.status import EnvStatus
from environments.wasm.environment import WasmEnvironment
from runtime.appmanager import AppManager
from runtime.node.compute import AppServerRunner, WasmRunner
from runtime.node.runners import runner_of
from runtime.serving import payload_of, serving_of


def builtin_build(env: str) -> Any:
    return AppManager().resolve("tutorialapp", env)


async def serve_a_task(serving: AppServing, work_dir: Path) -> tuple[bool, bool, int | None, str]:
    """Open the serving, start a requestor server, create a task through it, kill it, close the serving:
    (running after start, running after kill, exit code, the environment the created task names)."""
    launch = await serving.open()
    try:
        server = launch("requestor", work_dir, True)
        client = RequestorAppClient(await server.start())
        try:
            running = server.running
            (work_dir / "t1").mkdir()
            created = await client.create_task("t1", 1, {"input": "serving", "difficulty": 4, "subtasks": 2})
        finally:
            client.close()
        await server.kill()
        return running, server.running, await server.wait(5), created.env_id
    finally:
        await serving.close()


@pytest.mark.parametrize("env", ["local", "wasm"])
def test_a_build_is_served_by_its_environment_with_one_lifecycle(env: str, tmp_path: Path) -> None:
    running, still_running, _, task_env = asyncio.run(serve_a_task(serving_of(builtin_build(env)), tmp_path))
    assert running and not still_running
    assert task_env in environment_ids()  # the build's app answered CreateTask through the served requestor


def test_a_wasm_build_runs_in_an_environment_of_its_own_class() -> None:
    class PluggedWasm(WasmEnvironment):
        env_id = "plugged_for_serving"

    serving = PluggedWasm.app_serving(payload_of(builtin_build("wasm")))
    command = serving.command
    assert command[command.index("--env") + 1] == "plugged_for_serving"
    assert Path(command[-1]).is_file() and command[-1].endswith(".wasm")


def test_a_local_build_is_served_by_an_environment_that_serving_enables_and_disables(tmp_path: Path) -> None:
    serving = LocalEnvironment.app_serving(payload_of(builtin_build("local")))
    environment = serving.environment
    assert environment.status() is EnvStatus.DISABLED
    asyncio.run(serve_a_task(serving, tmp_path))
    assert environment.status() is EnvStatus.DISABLED


class ComputeOnly(Environment[object, Prerequisites, Any]):
    """An environment of a new class that serves no apps."""

    env_id = "compute_only"
    declared_capabilities = Capabilities(deterministic=False, metered=False)
    payload_kind = PayloadKind.PYTHON_PACKAGE
    prerequisites_type = Prerequisites

    @classmethod
    def support(cls) -> Any:
        raise NotImplementedError

    async def install_prerequisites(self, prerequisites: Prerequisites) -> None:
        raise NotImplementedError

    async def benchmark(self) -> Any:
        raise NotImplementedError

    def runtime(self, payload: object, config: Any = None) -> Any:
        raise NotImplementedError

    async def _prepare(self) -> None:
        return None

    async def _clean_up(self) -> None:
        return None


class ServesApps(ComputeOnly):
    """An environment of a new class (no wasm, docker or local one) whose app servers are local ones."""

    env_id = "serves_apps"
    declared_capabilities = Capabilities(deterministic=False, metered=False, serves_apps=True)

    @classmethod
    def app_serving(cls, payload: AppPayload) -> AppServing:
        return LocalEnvironment.app_serving(payload)


def test_an_environment_that_serves_no_apps_refuses_naming_itself() -> None:
    with pytest.raises(PrerequisitesRefused, match="environment compute_only does not serve app servers"):
        ComputeOnly.app_serving(AppPayload({"module": "apps.tutorialapp"}, Path(".")))


def test_a_provider_computes_in_a_new_class_of_environment_on_the_app_servers_it_serves() -> None:
    assert isinstance(runner_of(ServesApps(None)), AppServerRunner)
    assert isinstance(runner_of(LocalEnvironment()), AppServerRunner)
    assert isinstance(runner_of(WasmEnvironment()), WasmRunner)
    with pytest.raises(ValueError, match=r"compute_only .* serves no apps"):
        runner_of(ComputeOnly(None))


@pytest.mark.parametrize(
    ("environment", "prerequisites", "field"),
    [
        (LocalEnvironment, {"module": "apps.tutorialapp", "shell": "rm -rf /"}, "shell"),
        (LocalEnvironment, {"command": ["python3"]}, "module"),
        (WasmEnvironment, {"module": "app.wasm", "sha256": "not hex"}, "sha256"),
    ],
    ids=["local unknown field", "local without module", "wasm bad sha256"],
)
def test_prerequisites_an_environment_cannot_serve_are_refused_naming_the_field(
    environment: type[Environment[Any, Any, Any]], prerequisites: dict[str, Any], field: str
) -> None:
    with pytest.raises(PrerequisitesRefused, match=f"prerequisites {field}"):
        environment.app_serving(AppPayload(prerequisites, Path(sys.prefix)))
