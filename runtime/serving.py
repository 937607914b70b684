"""How the node serves an app build as task-api app servers: as its environment says.

`serving_of(app)` finds the build's environment through the registry and asks it
(`Environment.app_serving`, `environments.app_serving`) how it serves the build; the node holds every app
server (a process of the wasm adapter, a local child process, a docker container) through the same
`AppServer` lifecycle and never asks which environment made it.
"""

from __future__ import annotations

from environments.app_serving import AppPayload, AppServing
from environments.base import PrerequisitesRefused
from environments.registry import UnknownEnvironment, environment_class
from runtime.appmanager import App, AppNotAvailable


def payload_of(app: App) -> AppPayload:
    """What the build's environment serves: its descriptor's prerequisites, beside its descriptor."""
    return AppPayload(app.descriptor.prerequisites.model_dump(), app.path.parent)


def serving_of(app: App) -> AppServing:
    """How the build's environment serves it; AppNotAvailable naming the build when it cannot here."""
    try:
        return environment_class(app.environment).app_serving(payload_of(app))
    except (UnknownEnvironment, PrerequisitesRefused) as exc:
        raise AppNotAvailable(f"{app.label()}: {exc}") from exc
