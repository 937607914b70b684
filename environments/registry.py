"""Finds environments through the entry-point group `taskapi.environments` (name = env id).

A new environment is one package that declares, in its pyproject.toml,

    [project.entry-points."taskapi.environments"]
    myenv = "mypackage:MyEnvironment"

and the node finds it with no change. An entry point that fails to load is listed as unsupported with
the reason, never as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from environments.base import Environment, Support

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


def _load(entry_point: metadata.EntryPoint) -> EnvironmentInfo:
    try:
        loaded = entry_point.load()
    except Exception as exc:
        reason = f"cannot load {entry_point.value}: {type(exc).__name__}: {exc}"
        return EnvironmentInfo(entry_point.name, None, Support(False, reason))
    if not (isinstance(loaded, type) and issubclass(loaded, Environment)):
        reason = f"{entry_point.value} is not an Environment subclass"
        return EnvironmentInfo(entry_point.name, None, Support(False, reason))
    if loaded.env_id != entry_point.name:
        reason = f"{entry_point.value} declares env_id {loaded.env_id!r}, not {entry_point.name!r}"
        return EnvironmentInfo(entry_point.name, None, Support(False, reason))
    try:
        support = loaded.support()
    except Exception as exc:
        support = Support(False, f"support check failed: {type(exc).__name__}: {exc}")
    return EnvironmentInfo(entry_point.name, loaded, support)


def list_environments() -> list[EnvironmentInfo]:
    """Every installed environment, sorted by id, each with supported / unsupported and the reason."""
    entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted((_load(entry_point) for entry_point in entry_points), key=lambda info: info.env_id)


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
