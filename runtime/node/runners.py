"""Which compute runners and whitelist a provider starts with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from environments.registry import environment_class
from runtime.appmanager import App, AppManager, DockerDescriptor, LocalDescriptor, WasmDescriptor
from runtime.node.compute import ComputeRunner, DockerGpuRunner, DockerRunner, LocalRunner, WasmRunner
from runtime.node.provider import Whitelist

if TYPE_CHECKING:
    from environments.docker import DockerEnvironment

RUNNERS: dict[str, type] = {
    runner.env_id: runner for runner in (LocalRunner, WasmRunner, DockerRunner, DockerGpuRunner)
}


def runners_for(envs: list[str], apps: Iterable[App] = ()) -> list[ComputeRunner]:
    """One runner per requested environment; an unknown environment is an error naming the known ones.

    With `apps`, docker runners also admit the images of those apps' docker builds (added apps included).
    """
    unknown = [env for env in envs if env not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown environments {unknown}; this provider can run {sorted(RUNNERS)}")
    docker_builds = [app.descriptor for app in apps if isinstance(app.descriptor, DockerDescriptor)]
    runners: list[ComputeRunner] = []
    for env in envs:
        if issubclass(RUNNERS[env], DockerRunner) and docker_builds:
            runners.append(RUNNERS[env](_docker_environment(env, docker_builds)))
        else:
            runners.append(RUNNERS[env]())
    return runners


def _docker_environment(env: str, builds: list[DockerDescriptor]) -> DockerEnvironment:
    """A docker environment admitting these builds' images (by repository, or digest if pinned) besides the
    project's own (its benchmark runs in one)."""
    from environments.docker import DockerConfig, DockerEnvironment
    from environments.docker.environment import PROJECT_REPOSITORIES

    config = DockerConfig(
        repositories=PROJECT_REPOSITORIES
        | frozenset(b.prerequisites.image for b in builds if b.prerequisites.digest is None),
        digests=frozenset(b.prerequisites.digest for b in builds if b.prerequisites.digest is not None),
    )
    environment = environment_class(env)(config)
    assert isinstance(environment, DockerEnvironment), f"{env} is not a docker environment"
    return environment


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
