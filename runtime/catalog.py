"""`taskapi run`'s view of the app manager: an app by name, and the command that serves each build.

`local` runs a Python app as a plain child process: no sandbox, for app development only.
`wasm` serves a gWASM module through the wasm environment's adapter (sandboxed, the default).
Docker builds are described and managed, but not served from here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from dataclasses import dataclass

from apps.sdk.process import python_app_command
from runtime.appmanager import (
    App,
    AppManager,
    AppNotAvailable,
    LocalDescriptor,
    WasmDescriptor,
)

WASM_ADAPTER = "environments.wasm.__main__"

UnknownApp = AppNotAvailable
"""Anything that stops an app being used (unknown, disabled, no such build); the message lists the apps."""


def serve_command(app: App) -> list[str]:
    """The command that serves an app build as a task-api app server (`... requestor|provider PORT`)."""
    if isinstance(app.descriptor, WasmDescriptor):
        assert app.module is not None
        if importlib.util.find_spec(WASM_ADAPTER) is None:
            raise AppNotAvailable(f"{app.label()}: the wasm adapter {WASM_ADAPTER} is missing (try --env)")
        return [sys.executable, "-m", "environments.wasm", str(app.module)]
    if isinstance(app.descriptor, LocalDescriptor):
        return python_app_command(app.descriptor.prerequisites.module)
    raise AppNotAvailable(f"{app.label()}: {app.environment} builds cannot be served by this node yet")


@dataclass(frozen=True)
class CatalogApp:
    """An app name and the app manager that knows its builds."""

    name: str
    manager: AppManager

    def command(self, env: str | None) -> tuple[str, list[str]]:
        """The environment used and the app server command for it (`env` None: the default build)."""
        app = self.manager.resolve(self.name, env)
        return app.environment, serve_command(app)

    @property
    def commands(self) -> dict[str, list[str]]:
        """The server command of each environment that has one usable enabled build."""
        found: dict[str, list[str]] = {}
        for env in sorted({app.environment for app in self.manager.find(self.name) if app.enabled}):
            with contextlib.suppress(AppNotAvailable):
                found[env] = self.command(env)[1]
        return found


def find_app(name: str, manager: AppManager | None = None) -> CatalogApp:
    """An app known to the app manager (default data dir unless `manager` is given); UnknownApp if none."""
    manager = manager or AppManager()
    manager.find(name)
    return CatalogApp(name, manager)
