"""How the node serves an app build as task-api app servers: processes or docker containers.

`serving_of(app)` gives an `AppServing`: `open()` readies what the build needs (the build's environment,
found through the registry; for docker restricted to the build's own image) and returns a `Launcher`, which
makes the app server of one role on one work dir; `close()` releases it. Every server has the surface of
`apps.sdk.process.AppProcess` (`ServerProcess`), so the requestor, `taskapi run` and the conformance
suite hold a process and a container alike.

By what the build is (the payload kind of its environment):
- a Python package: its environment's `app_server` runs it as a plain child process (`local`: no
  sandbox, for app development only);
- a wasm module: served through the wasm adapter, `python -m environments.wasm --env ENV MODULE`, in the
  build's environment (sandboxed);
- a container image: its environment's `DockerAppServer` runs the image's entrypoint in a hardened
  container on an internal network (`docker_cpu` / `docker_gpu`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from grpclib.client import Channel

from apps.sdk.process import AppProcess, python_app_command
from environments.base import PrerequisitesRefused
from environments.local import LocalEnvironment, with_work_dir_at
from environments.registry import environment_class
from runtime.appmanager import App, AppNotAvailable, DockerDescriptor, LocalDescriptor, WasmDescriptor

if TYPE_CHECKING:
    from environments.docker import DockerEnvironment

WASM_ADAPTER = "environments.wasm.__main__"

Role = Literal["requestor", "provider"]


class ServerProcess(Protocol):
    """One app server (process or container)."""

    @property
    def running(self) -> bool: ...

    async def start(self) -> Channel: ...

    async def wait(self, timeout: float) -> int | None: ...

    async def kill(self) -> None: ...

    def log_tail(self, limit: int = 2000) -> str: ...


Launcher = Callable[[Role, Path, bool], ServerProcess]
"""Makes the server of one role on one work dir (`persistent`: a provider that serves until Shutdown)."""


class AppServing(Protocol):
    """What serving one app build needs, from `open()` to `close()`."""

    async def open(self) -> Launcher: ...

    async def close(self) -> None: ...


def command_launcher(command: Sequence[str]) -> Launcher:
    """Servers run as local child processes: `<command> requestor|provider PORT [--persistent]`."""
    fixed = list(command)

    def launch(role: Role, work_dir: Path, persistent: bool) -> ServerProcess:
        return AppProcess(fixed, role, work_dir, persistent=persistent)

    return launch


class CommandServing:
    """A build served by a local command; nothing to ready or release."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)

    async def open(self) -> Launcher:
        return command_launcher(self.command)

    async def close(self) -> None:
        return None


class LocalServing:
    """A Python-package build: child processes its environment starts (`LocalEnvironment.app_server`)."""

    def __init__(self, env_id: str, command: Sequence[str]) -> None:
        self.env_id = env_id
        self.command = list(command)
        self._environment: LocalEnvironment | None = None

    async def open(self) -> Launcher:
        environment = environment_class(self.env_id)(None)
        assert isinstance(environment, LocalEnvironment), f"{self.env_id} is no local environment"
        await environment.prepare()
        self._environment = environment

        def launch(role: Role, work_dir: Path, persistent: bool) -> ServerProcess:
            return environment.app_server(self.command, role, work_dir, persistent=persistent)

        return launch

    async def close(self) -> None:
        environment, self._environment = self._environment, None
        if environment is not None:
            await environment.clean_up()


class DockerServing:
    """A docker build: containers of its image, on a docker environment that admits only that image."""

    def __init__(self, descriptor: DockerDescriptor) -> None:
        self.descriptor = descriptor
        prerequisites = descriptor.prerequisites
        self.reference = f"{prerequisites.image}:{prerequisites.tag}"
        self._environment: DockerEnvironment | None = None

    async def open(self) -> Launcher:
        from environments.docker import (  # docker is optional: imported only for docker builds
            DockerAppServer,
            DockerConfig,
            DockerEnvironment,
        )

        prerequisites = self.descriptor.prerequisites
        config = DockerConfig(
            repositories=frozenset({prerequisites.image}),
            digests=frozenset({prerequisites.digest} if prerequisites.digest else ()),
        )
        environment = environment_class(self.descriptor.environment)(config)
        assert isinstance(environment, DockerEnvironment), f"{self.descriptor.environment} is not docker"
        await environment.prepare()
        self._environment = environment

        def launch(role: Role, work_dir: Path, persistent: bool) -> ServerProcess:
            return DockerAppServer(environment, self.reference, role, work_dir, persistent=persistent)

        return launch

    async def close(self) -> None:
        environment, self._environment = self._environment, None
        if environment is not None:
            await environment.clean_up()


def serve_command(app: App) -> list[str]:
    """The local command that serves a wasm or local build (`... requestor|provider PORT`)."""
    if isinstance(app.descriptor, WasmDescriptor):
        assert app.module is not None
        if importlib.util.find_spec(WASM_ADAPTER) is None:
            raise AppNotAvailable(f"{app.label()}: the wasm adapter {WASM_ADAPTER} is missing (try --env)")
        return [sys.executable, "-m", "environments.wasm", "--env", app.environment, str(app.module)]
    if isinstance(app.descriptor, LocalDescriptor):
        return local_command(app.descriptor, app.path, app.label())
    raise AppNotAvailable(f"{app.label()}: {app.environment} builds are not served by a local command")


def local_command(descriptor: LocalDescriptor, descriptor_path: Path, label: str) -> list[str]:
    """The command of a local build: the app's own `command` (a relative program path resolved against the
    descriptor's folder) or `python -m MODULE`; wrapped to see its work dir at `work_dir` if it names one."""
    prerequisites = descriptor.prerequisites
    if prerequisites.command is None:
        command = python_app_command(prerequisites.module)
    else:
        program, *arguments = prerequisites.command
        if "/" in program and not Path(program).is_absolute():
            program = str((descriptor_path.parent / program).absolute())
        command = [program, *arguments]
    if prerequisites.work_dir is None:
        return command
    try:
        return with_work_dir_at(command, prerequisites.work_dir)
    except PrerequisitesRefused as exc:
        raise AppNotAvailable(f"{label}: {exc}") from exc


def serving_of(app: App) -> AppServing:
    """How to serve an app build; AppNotAvailable when this node cannot."""
    if isinstance(app.descriptor, DockerDescriptor):
        if importlib.util.find_spec("docker") is None:
            raise AppNotAvailable(f"{app.label()}: the docker SDK is not installed")
        return DockerServing(app.descriptor)
    if isinstance(app.descriptor, LocalDescriptor):
        return LocalServing(app.environment, serve_command(app))
    return CommandServing(serve_command(app))
