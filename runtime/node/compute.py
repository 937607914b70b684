"""Provider-side compute: one runner per environment turns an assignment into a result file and usage."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from apps.sdk.client import ProviderAppClient
from apps.sdk.workdir import ProviderTaskDir
from environments.app_serving import AppLauncher, AppServer, AppServing
from environments.base import Environment
from environments.docker import (
    DockerCpuEnvironment,
    DockerEnvironment,
    DockerLimits,
    DockerPrerequisites,
    compute_subtask,
)
from environments.local import LocalEnvironment
from environments.status import EnvStatus
from environments.wasm.app_adapter import ComputeLimits, WasmApp, WasmModule, WasmProviderApp
from environments.wasm.environment import WasmEnvironment
from protos import node_pb2 as npb
from runtime.appmanager import App, AppManager
from runtime.serving import serving_of


@dataclass(frozen=True)
class ComputeOutcome:
    output: Path
    usage: npb.Usage


class ComputeRunner(Protocol):
    """Computes subtasks of one environment on this provider."""

    env_id: str

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        """Compute the assigned subtask in `task_dir` (resources already in its subtask_inputs)."""

    async def benchmark(self) -> float:
        """A positive score for this machine in this environment."""

    async def close(self) -> None:
        """Release processes and pools."""


class AppServerRunner:
    """Apps served by their environment's app servers (`Environment.app_serving`): any environment that
    serves apps, `local` (no sandbox) or a plugin's, whatever its class.

    Golem's convention by default: one provider server per Compute, which serves it and exits (the server
    is killed if it has not exited `EXIT_GRACE_S` after its reply). A build whose descriptor declares
    `provider_server: reusable` keeps one persistent server per task instead. cpu_ns is approximated by
    wall time: a single-call server's start counts, a reusable server's does not.
    """

    EXIT_GRACE_S = 10.0

    def __init__(self, environment: Environment[Any, Any, Any] | None = None) -> None:
        self._environment = environment or LocalEnvironment()
        self.env_id = self._environment.env_id
        self._servings: dict[str, tuple[AppServing, AppLauncher]] = {}
        self._servers: dict[str, tuple[AppServer, ProviderAppClient]] = {}
        # Concurrent computes (capacity > 1) must not each open a serving or start a task's server:
        # the one stored last would orphan the other.
        self._starting = asyncio.Lock()

    async def _launcher(self, app: App) -> AppLauncher:
        """The build's launcher, its serving opened on first use (closed by `close()`)."""
        async with self._starting:
            if app.label() not in self._servings:
                serving = serving_of(app)
                self._servings[app.label()] = (serving, await serving.open())
        return self._servings[app.label()][1]

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        app = AppManager().resolve(assignment.app_name, self.env_id)
        launch = await self._launcher(app)
        params = _params(assignment.subtask_params_json)
        reusable = app.descriptor.provider_server == "reusable"
        client = await self._reusable_server(assignment.task_id, launch, task_dir) if reusable else None
        began = time.monotonic()  # a reusable server's start serves the whole task, not this compute
        if client is not None:
            output = await client.compute(assignment.task_id, assignment.subtask_id, params)
        else:
            output = await self._single_call(launch, task_dir, assignment, params)
        wall_ms = int((time.monotonic() - began) * 1000)
        return ComputeOutcome(task_dir.root / output, npb.Usage(wall_ms=wall_ms, cpu_ns=wall_ms * 1_000_000))

    async def _reusable_server(
        self, key: str, launch: AppLauncher, task_dir: ProviderTaskDir
    ) -> ProviderAppClient:
        async with self._starting:
            if key not in self._servers or not self._servers[key][0].running:
                server = launch("provider", task_dir.root, True)
                self._servers[key] = (server, ProviderAppClient(await server.start()))
        return self._servers[key][1]

    async def _single_call(
        self,
        launch: AppLauncher,
        task_dir: ProviderTaskDir,
        assignment: npb.Assignment,
        params: dict[str, object],
    ) -> Path:
        server = launch("provider", task_dir.root, False)
        client = ProviderAppClient(await server.start())
        try:
            return await client.compute(assignment.task_id, assignment.subtask_id, params)
        finally:
            client.close()
            await server.wait(self.EXIT_GRACE_S)

    async def benchmark(self) -> float:
        if self._environment.status() is not EnvStatus.ENABLED:
            await self._environment.prepare()
        result = await self._environment.benchmark()
        return float(result.score)

    async def close(self) -> None:
        for server, client in self._servers.values():
            client.close()
            await server.kill()
        self._servers.clear()
        for serving, _ in self._servings.values():
            await serving.close()
        self._servings.clear()
        if self._environment.status() in (EnvStatus.ENABLED, EnvStatus.ERROR):
            await self._environment.clean_up()


def _params(text: str) -> dict[str, object]:
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError("subtask params must be a JSON object")
    return value


class WasmRunner:
    """gWASM apps in the wasm environment: every compute is one sandboxed, fuel-metered invocation.

    Each compute gets the fuel and wall-clock deadline of its task (`ComputeLimits` in the assignment's
    prerequisites; the defaults if the requestor set none), never more than this provider's own limits
    (`WasmConfig.limits`). A compute that reaches its deadline is interrupted and reported as failed, so
    the subtask's lease is given back then (at the latest its compile time and the pool's grace later).
    """

    def __init__(self, environment: WasmEnvironment | None = None) -> None:
        self._environment = environment or WasmEnvironment()
        self.env_id = self._environment.env_id
        self._apps: dict[str, WasmProviderApp] = {}

    def _app(self, module: Path, sha256: str) -> WasmProviderApp:
        if sha256 not in self._apps:
            self._apps[sha256] = WasmProviderApp(WasmApp(WasmModule.load(module, sha256), self._environment))
        return self._apps[sha256]

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        if module is None:
            raise ValueError(f"subtask {assignment.subtask_id} of a wasm app came without its module")
        app = self._app(module, assignment.app_module.sha256)
        limits = ComputeLimits.of_task(assignment.prerequisites_json).within(self._environment.config.limits)
        task_dir.subtask_dir(assignment.subtask_id).mkdir(exist_ok=True)
        output, usage = await app.compute_with_usage(
            task_dir, assignment.subtask_id, _params(assignment.subtask_params_json), limits
        )
        return ComputeOutcome(
            task_dir.root / output,
            npb.Usage(
                wall_ms=int(usage.wall_ms),
                cpu_ns=usage.cpu_ns,
                peak_memory_bytes=usage.peak_memory_bytes,
                fuel=usage.fuel or 0,
            ),
        )

    async def benchmark(self) -> float:
        if self._environment.status() is not EnvStatus.ENABLED:
            await self._environment.prepare()
        result = await self._environment.benchmark()
        return float(result.score)

    async def close(self) -> None:
        if self._environment.status() in (EnvStatus.ENABLED, EnvStatus.ERROR):
            await self._environment.clean_up()


class DockerRunner:
    """Docker apps: every compute runs the app image's `provider PORT` in a fresh hardened container.

    The image comes from the assignment's prerequisites (`{"image", "tag", "digest"?}`); the environment
    refuses images off its whitelist or missing here. The container is stopped at the assignment's deadline.
    With a GPU environment (docker_gpu), the containers get the machine's GPUs.
    """

    def __init__(self, environment: DockerEnvironment | None = None) -> None:
        self._environment = environment or DockerCpuEnvironment()
        self.env_id = self._environment.env_id

    async def _enabled(self) -> DockerEnvironment:
        if self._environment.status() is not EnvStatus.ENABLED:
            await self._environment.prepare()
        return self._environment

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        environment = await self._enabled()
        prerequisites = DockerPrerequisites.model_validate_json(assignment.prerequisites_json or "{}")
        await environment.install_prerequisites(prerequisites)
        limits = environment.config.limits
        if assignment.deadline_ms:
            left_s = max(1.0, assignment.deadline_ms / 1000 - time.time())
            limits = limits.model_copy(update={"wall_time_s": min(limits.wall_time_s or left_s, left_s)})
        result = await compute_subtask(
            environment,
            prerequisites.reference,
            task_dir.root,
            assignment.task_id,
            assignment.subtask_id,
            _params(assignment.subtask_params_json),
            DockerLimits.model_validate(limits.model_dump()),
        )
        usage = result.usage
        return ComputeOutcome(
            result.output,
            npb.Usage(
                wall_ms=int(usage.wall_ms), cpu_ns=usage.cpu_ns, peak_memory_bytes=usage.peak_memory_bytes
            ),
        )

    async def benchmark(self) -> float:
        result = await (await self._enabled()).benchmark()
        return float(result.score)

    async def close(self) -> None:
        if self._environment.status() in (EnvStatus.ENABLED, EnvStatus.ERROR):
            await self._environment.clean_up()
