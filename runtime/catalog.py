"""The apps `taskapi run` knows without set-up, and how to serve each in each environment.

`local` runs a Python app as a plain child process: no sandbox, for app development only.
`wasm` serves a gWASM module through the wasm environment's adapter (sandboxed, the default).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from apps.sdk.process import python_app_command

REPO_ROOT = Path(__file__).resolve().parent.parent
WASM_APPS = REPO_ROOT / "wasm_apps"
DEFAULT_ENV = "wasm"


class UnknownApp(LookupError):
    """An app name or environment the catalogue does not have; the message lists what it has."""


def wasm_app_command(module: Path) -> list[str]:
    """The command that serves a gWASM module as a task-api app."""
    return [sys.executable, "-m", "environments.wasm", str(module)]


@dataclass(frozen=True)
class CatalogApp:
    name: str
    commands: dict[str, list[str]] = field(default_factory=dict)

    def command(self, env: str | None) -> tuple[str, list[str]]:
        """The environment used and the app server command for it (`env` None: the default)."""
        chosen = env or (DEFAULT_ENV if DEFAULT_ENV in self.commands else next(iter(self.commands)))
        if chosen not in self.commands:
            raise UnknownApp(
                f"app {self.name!r} has no build for environment {chosen!r}; it has {sorted(self.commands)}"
            )
        return chosen, self.commands[chosen]


def builtin_apps() -> dict[str, CatalogApp]:
    """Every shipped app with the environments it has a build for (wasm only if its module exists)."""
    apps = {
        "tutorialapp": CatalogApp("tutorialapp", {"local": python_app_command("apps.tutorialapp")}),
        "mandelbrot": CatalogApp("mandelbrot"),
    }
    for name, app in apps.items():
        module = WASM_APPS / name / f"{name}.wasm"
        if module.is_file():
            app.commands["wasm"] = wasm_app_command(module)
    return {name: app for name, app in apps.items() if app.commands}


def find_app(name: str) -> CatalogApp:
    apps = builtin_apps()
    if name not in apps:
        raise UnknownApp(f"unknown app {name!r}; known apps: {', '.join(sorted(apps))}")
    return apps[name]
