"""Finds environments through the entry-point group `taskapi.environments` (name = env id).

A new environment is one package that declares, in its pyproject.toml,

    [project.entry-points."taskapi.environments"]
    myenv = "mypackage:MyEnvironment"

and the node finds it with no change. The node never tests an environment's id: it asks what the class
declares, its `Capabilities` (`capabilities(env_id)`: deterministic, metered, gpu, network, serves_apps,
sandboxed) and what its app builds are (`payload_kind(env_id)`: a wasm module, a container image, a Python
package), and picks a default by `preference`. An entry point that fails to load is listed as unsupported
with the reason, never as a crash.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from environments.base import Capabilities, Environment, PayloadKind, Support

ENTRY_POINT_GROUP = "taskapi.environments"

EnvironmentClass = type[Environment[Any, Any, Any]]


class UnknownEnvironment(LookupError):
    """No installed environment has this id; the message lists the known ones."""


@dataclass(frozen=True)
class EnvironmentInfo:
    """One installed environment: its class (None if it failed to load) and its support on this machine."""

    env_id: str
    environment: EnvironmentClass | None
    support: Support


def _registered() -> dict[str, list[metadata.EntryPoint]]:
    """The group's entry points by name; one name's entry points naming the same object count once (a
    distribution found twice on the path), different ones each."""
    registered: dict[str, list[metadata.EntryPoint]] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        same_name = registered.setdefault(entry_point.name, [])
        if all(other.value != entry_point.value for other in same_name):
            same_name.append(entry_point)
    return registered


def _environment_class(entry_points: list[metadata.EntryPoint]) -> EnvironmentClass | str:
    """The Environment subclass an id's entry point names, or why there is none: it does not load, is no
    Environment subclass, declares another id, or several entry points claim the id (none is trusted)."""
    if len(entry_points) > 1:
        claims = ", ".join(sorted(entry_point.value for entry_point in entry_points))
        return f"registered by {len(entry_points)} entry points ({claims}); install only one of them"
    (entry_point,) = entry_points
    try:
        loaded = entry_point.load()
    except Exception as exc:
        return f"cannot load {entry_point.value}: {type(exc).__name__}: {exc}"
    if not (isinstance(loaded, type) and issubclass(loaded, Environment)):
        return f"{entry_point.value} is not an Environment subclass"
    if loaded.env_id != entry_point.name:
        return f"{entry_point.value} declares env_id {loaded.env_id!r}, not {entry_point.name!r}"
    return loaded


def _load(env_id: str, entry_points: list[metadata.EntryPoint]) -> EnvironmentInfo:
    loaded = _environment_class(entry_points)
    if isinstance(loaded, str):
        return EnvironmentInfo(env_id, None, Support(False, loaded))
    try:
        support = loaded.support()
    except Exception as exc:
        support = Support(False, f"support check failed: {type(exc).__name__}: {exc}")
    return EnvironmentInfo(env_id, loaded, support)


def list_environments() -> list[EnvironmentInfo]:
    """Every installed environment, sorted by id, each with supported / unsupported and the reason."""
    return [_load(env_id, entry_points) for env_id, entry_points in sorted(_registered().items())]


def get_environment(env_id: str) -> EnvironmentClass:
    """The class of a supported environment, or `UnknownEnvironment` saying what is installed / why not."""
    infos = {info.env_id: info for info in list_environments()}
    info = infos.get(env_id)
    if info is None:
        raise UnknownEnvironment(
            f"unknown environment {env_id!r}; installed: {', '.join(sorted(infos)) or 'none'}"
        )
    if info.environment is None or not info.support.supported:
        raise UnknownEnvironment(f"environment {env_id!r} is not usable here: {info.support.reason}")
    return info.environment


def environment_class(env_id: str) -> EnvironmentClass:
    """The class of installed environment `env_id`, whether or not this machine supports it (its
    `prepare()` says why not); `UnknownEnvironment` for an id no installed environment has."""
    entry_points = _registered().get(env_id)
    if entry_points is None:
        raise UnknownEnvironment(f"unknown environment {env_id!r}")
    loaded = _environment_class(entry_points)
    if isinstance(loaded, str):
        raise UnknownEnvironment(f"environment {env_id!r} cannot be loaded: {loaded}")
    return loaded


def environment_ids() -> list[str]:
    """The ids of the installed environments, sorted (their entry points' names; nothing is loaded)."""
    return sorted(_registered())


@functools.cache
def capabilities(env_id: str) -> Capabilities:
    """What runs in environment `env_id` are like, as its class declares them; `UnknownEnvironment` for
    an id no installed environment has."""
    return environment_class(env_id).declared_capabilities


@functools.cache
def payload_kind(env_id: str) -> PayloadKind:
    """What app builds for environment `env_id` are, as its class declares it; `UnknownEnvironment` for an
    id no installed environment has."""
    return environment_class(env_id).payload_kind


def preference(env_id: str) -> tuple[bool, bool, bool, bool, bool, str]:
    """Sort key putting the environment to use by default first: sandboxed before not, then deterministic,
    metered, without GPU (a GPU is scarce), then by id; one that cannot be loaded last."""
    try:
        declared = capabilities(env_id)
    except UnknownEnvironment:
        return (True, True, True, True, True, env_id)
    return (
        False,
        not declared.sandboxed,
        not declared.deterministic,
        not declared.metered,
        declared.gpu,
        env_id,
    )


def by_preference(env_ids: Iterable[str]) -> list[str]:
    """`env_ids` (installed ones), the one to use by default first (`preference`)."""
    return sorted(env_ids, key=preference)
