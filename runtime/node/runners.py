"""Which compute runners and whitelist a provider starts with."""

from __future__ import annotations

from collections.abc import Iterable

from runtime.appmanager import App, AppManager, DockerDescriptor, LocalDescriptor, WasmDescriptor
from runtime.node.compute import ComputeRunner, DockerGpuRunner, DockerRunner, LocalRunner, WasmRunner
from runtime.node.provider import Whitelist

RUNNERS: dict[str, type] = {
    "local": LocalRunner,
    "wasm": WasmRunner,
    "docker_cpu": DockerRunner,
    "docker_gpu": DockerGpuRunner,
}


def runners_for(envs: list[str]) -> list[ComputeRunner]:
    """One runner per requested environment; an unknown environment is an error naming the known ones."""
    unknown = [env for env in envs if env not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown environments {unknown}; this provider can run {sorted(RUNNERS)}")
    return [RUNNERS[env]() for env in envs]


def whitelist_of(apps: Iterable[App]) -> Whitelist:
    """A whitelist of exactly these app builds: wasm by module sha256, local by name, docker by repository
    (and image id when the descriptor pins one)."""
    whitelist = Whitelist()
    for app in apps:
        if isinstance(app.descriptor, WasmDescriptor):
            whitelist.wasm_modules.add(app.descriptor.prerequisites.sha256)
        elif isinstance(app.descriptor, LocalDescriptor):
            whitelist.local_apps.add(app.name)
        elif isinstance(app.descriptor, DockerDescriptor):
            prerequisites = app.descriptor.prerequisites
            if prerequisites.digest is None:
                whitelist.docker_repositories.add(prerequisites.image)
            else:
                whitelist.docker_digests.add(prerequisites.digest)
    return whitelist


def builtin_whitelist(manager: AppManager | None = None) -> Whitelist:
    """The shipped, enabled apps."""
    apps = (manager or AppManager()).inventory().apps
    return whitelist_of(app for app in apps if app.builtin and app.enabled)
