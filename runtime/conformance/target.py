"""The app under test: one build, how to start its servers, and what exactly was tested (id and digest).

`target_of(app)` turns an app manager build into a `Target`:

- `local`: `python -m MODULE` as a child process; the digest is the sha256 of the package's files;
- `wasm`: the module served by the wasm adapter (`python -m environments.wasm MODULE`); the digest is the
  module's sha256 (checked against the descriptor when the build was loaded);
- `docker_cpu` / `docker_gpu`: the image's entrypoint in a container (`environments.docker.DockerAppServer`,
  as the node would run it); the digest is the local image id.

`command_target` makes a target of any command that serves `requestor|provider PORT` (tests' planted-bug
apps, apps not installed in the app manager).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.appmanager import App, DockerDescriptor, LocalDescriptor, ParamSpec, WasmDescriptor
from runtime.catalog import serve_command
from runtime.conformance.wire import Launcher, Loop, Role, ServerProcess, command_launcher

DIGEST_KINDS = {
    "local": "sha256 of the Python package's files",
    "wasm": "sha256 of the wasm module",
    "docker_cpu": "docker image id",
    "docker_gpu": "docker image id",
}

_SKIPPED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}


def package_digest(module: str) -> str:
    """`sha256:` of a Python module's source: its package folder's files (paths and bytes), or its file."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"Python module {module!r} is not importable")
    origin = Path(spec.origin)
    files = (
        [origin]
        if spec.submodule_search_locations is None
        else sorted(
            path
            for path in origin.parent.rglob("*")
            if path.is_file() and not _SKIPPED_PARTS & set(path.parts) and path.suffix != ".pyc"
        )
    )
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(origin.parent).as_posix().encode()
        content = path.read_bytes()
        digest.update(len(name).to_bytes(8, "big") + name + len(content).to_bytes(8, "big") + content)
    return f"sha256:{digest.hexdigest()}"


LauncherFactory = Callable[[Loop], Launcher]


@dataclass(frozen=True)
class Target:
    """One app build under test."""

    name: str
    version: str
    environment: str
    app_id: str
    digest: str
    open_launcher: LauncherFactory = field(repr=False)
    parameters: Mapping[str, ParamSpec] = field(default_factory=dict)
    wasm_module: Path | None = None
    close_launcher: Callable[[Loop], None] = field(default=lambda loop: None, repr=False)

    def label(self) -> str:
        return f"{self.name} {self.version} ({self.environment}, {self.app_id[:12]})"


def command_target(
    name: str,
    command: list[str],
    *,
    parameters: Mapping[str, ParamSpec] | None = None,
    environment: str = "local",
    version: str = "0",
    app_id: str | None = None,
    digest: str | None = None,
    wasm_module: Path | None = None,
) -> Target:
    """A target served by a local command; id and digest default to hashes of the command line."""
    fingerprint = hashlib.sha256("\0".join(command).encode()).hexdigest()
    launcher = command_launcher(command)
    return Target(
        name=name,
        version=version,
        environment=environment,
        app_id=app_id or fingerprint,
        digest=digest or f"sha256:{fingerprint}",
        open_launcher=lambda loop: launcher,
        parameters=dict(parameters or {}),
        wasm_module=wasm_module,
    )


def target_of(app: App) -> Target:
    """The target of an app manager build (AppNotAvailable when it cannot be served here)."""
    descriptor = app.descriptor
    common: dict[str, Any] = {
        "name": app.name,
        "version": app.version,
        "environment": app.environment,
        "app_id": app.app_id,
        "parameters": dict(descriptor.parameters),
    }
    if isinstance(descriptor, WasmDescriptor):
        launcher = command_launcher(serve_command(app))
        return Target(
            **common,
            digest=f"sha256:{descriptor.prerequisites.sha256}",
            open_launcher=lambda loop: launcher,
            wasm_module=app.module,
        )
    if isinstance(descriptor, LocalDescriptor):
        launcher = command_launcher(serve_command(app))
        return Target(
            **common,
            digest=package_digest(descriptor.prerequisites.module),
            open_launcher=lambda loop: launcher,
        )
    if isinstance(descriptor, DockerDescriptor):
        return docker_target(descriptor, common)
    raise ValueError(f"{app.label()}: environment {app.environment} is not supported")


def docker_target(descriptor: DockerDescriptor, common: dict[str, Any]) -> Target:
    """Servers are containers of the descriptor's image on the docker environment the node would use."""
    from environments.docker import (  # docker is optional: imported only for docker builds
        DockerAppServer,
        DockerConfig,
        DockerCpuEnvironment,
        DockerEnvironment,
        DockerGpuEnvironment,
    )

    prerequisites = descriptor.prerequisites
    reference = f"{prerequisites.image}:{prerequisites.tag}"
    kind = DockerGpuEnvironment if descriptor.environment == "docker_gpu" else DockerCpuEnvironment
    environments: list[DockerEnvironment] = []

    def open_launcher(loop: Loop) -> Launcher:
        config = DockerConfig(
            repositories=frozenset({prerequisites.image}),
            digests=frozenset({prerequisites.digest} if prerequisites.digest else ()),
        )
        environment = kind(config)
        loop.run(environment.prepare(), "prepare of the docker environment")
        environments.append(environment)

        def launch(role: Role, work_dir: Path, persistent: bool) -> ServerProcess:
            return DockerAppServer(environment, reference, role, work_dir, persistent=persistent)

        return launch

    def close_launcher(loop: Loop) -> None:
        while environments:
            loop.run(environments.pop().clean_up(), "clean-up of the docker environment")

    return Target(
        **common,
        digest=prerequisites.digest or image_id(reference),
        open_launcher=open_launcher,
        close_launcher=close_launcher,
    )


def image_id(reference: str) -> str:
    """The local image id (`sha256:...`) of a docker image reference; ValueError when it is missing."""
    import docker

    try:
        client = docker.from_env()
        try:
            return str(client.images.get(reference).id)
        finally:
            client.close()
    except Exception as exc:
        raise ValueError(f"docker image {reference} is not available here: {exc}") from exc
