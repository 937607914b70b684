"""Which compute runners and whitelist a provider starts with.

Environments are found through the registry (`environments.registry`). A wasm or docker environment
(whatever its id) computes in-process through its own API (`WasmRunner`: fuel-metered module runs;
`DockerRunner`: one hardened container per compute); any other environment that serves apps (`local`, a
plugin's of a class the node has never seen) computes on provider app servers it serves itself
(`AppServerRunner`, `Environment.app_serving`), so a new environment needs no change here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from environments.base import Environment
from environments.docker import DockerConfig, DockerEnvironment
from environments.docker.environment import PROJECT_REPOSITORIES
from environments.registry import environment_class, environment_ids
from environments.wasm.environment import WasmEnvironment
from runtime.appmanager import App, AppManager, DockerDescriptor, LocalDescriptor, WasmDescriptor
from runtime.node.compute import AppServerRunner, ComputeRunner, DockerRunner, WasmRunner
from runtime.node.provider import Whitelist


def runners_for(envs: list[str], apps: Iterable[App] = ()) -> list[ComputeRunner]:
    """One runner per requested environment; an unknown environment is an error naming the known ones.

    With `apps`, docker runners also admit the images of those apps' docker builds (added apps included).
    """
    known = environment_ids()
    unknown = [env for env in envs if env not in known]
    if unknown:
        raise ValueError(f"unknown environments {unknown}; this provider can run {known}")
    docker_builds = [app.descriptor for app in apps if isinstance(app.descriptor, DockerDescriptor)]
    return [runner_of(_environment(env, docker_builds)) for env in envs]


def runner_of(environment: Environment[Any, Any, Any]) -> ComputeRunner:
    """The runner that computes subtasks in `environment`; ValueError for one that is neither a wasm nor a
    docker environment and serves no apps."""
    if isinstance(environment, WasmEnvironment):
        return WasmRunner(environment)
    if isinstance(environment, DockerEnvironment):
        return DockerRunner(environment)
    if environment.declared_capabilities.serves_apps:
        return AppServerRunner(environment)
    raise ValueError(
        f"environment {environment.env_id} ({type(environment).__name__}) is no wasm or docker environment "
        "and serves no apps (capability serves_apps): this provider has no runner for it"
    )


def _environment(env: str, docker_builds: list[DockerDescriptor]) -> Environment[Any, Any, Any]:
    """Environment `env` with its default config; a docker one admitting these builds' images (by
    repository, or digest if pinned) besides the project's own (its benchmark runs in one)."""
    environment_type = environment_class(env)
    if not (docker_builds and issubclass(environment_type, DockerEnvironment)):
        return environment_type(None)
    pinned = [b.prerequisites.digest for b in docker_builds if b.prerequisites.digest is not None]
    config = DockerConfig(
        repositories=PROJECT_REPOSITORIES
        | frozenset(b.prerequisites.image for b in docker_builds if b.prerequisites.digest is None),
        digests=frozenset(pinned),
    )
    return environment_type(config)


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
