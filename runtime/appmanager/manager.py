"""The app manager: every app build it can find, whether each is enabled, and which one a request means.

Descriptors come from the shipped apps (`apps/*/descriptor.json`, `wasm_apps/*/descriptor.json` and the
docker builds' `images/*/descriptor.json`, found without set-up) and from the data dir
(`<data>/apps/*.json` placed by hand, `<data>/apps/*/descriptor.json` copied there by `add`). Shipped
apps are enabled unless disabled; added ones are disabled until enabled.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from environments.registry import by_preference
from runtime.appmanager.descriptor import Descriptor, WasmDescriptor, environments
from runtime.appmanager.errors import (
    AppDisabled,
    AppNotAvailable,
    DescriptorError,
    FieldProblem,
    UnknownApp,
)
from runtime.appmanager.identity import app_id
from runtime.appmanager.loading import load_descriptor, module_path
from runtime.appmanager.state import EnabledState

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILTIN_ROOTS = (REPO_ROOT / "apps", REPO_ROOT / "wasm_apps", REPO_ROOT / "images")
DATA_DIR_ENV = "TASKAPI_DATA_DIR"
DESCRIPTOR_FILE = "descriptor.json"
MIN_ID_PREFIX = 6


def default_data_dir() -> Path:
    """`$TASKAPI_DATA_DIR`, else `$XDG_DATA_HOME/taskapi`, else `~/.local/share/taskapi`."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "taskapi"


@dataclass(frozen=True)
class App:
    """One app build: its validated descriptor, its id, where it was found, and whether it is enabled."""

    app_id: str
    descriptor: Descriptor
    path: Path
    builtin: bool
    enabled: bool

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def version(self) -> str:
        return self.descriptor.version

    @property
    def environment(self) -> str:
        return self.descriptor.environment

    @property
    def module(self) -> Path | None:
        """The wasm module file of a wasm build (its sha256 was checked when loaded); else None."""
        if isinstance(self.descriptor, WasmDescriptor):
            return module_path(self.descriptor, self.path)
        return None

    def label(self) -> str:
        """`name version (environment, id prefix)`, for messages."""
        return f"{self.name} {self.version} ({self.environment}, {self.app_id[:12]})"


@dataclass(frozen=True)
class Inventory:
    """Every app build found, and every descriptor file that could not be used."""

    apps: list[App]
    problems: list[DescriptorError]

    def known(self) -> str:
        """The app names, disabled ones marked, for error messages."""
        enabled = {app.name for app in self.apps if app.enabled}
        names = sorted({app.name for app in self.apps})
        text = ", ".join(name if name in enabled else f"{name} (disabled)" for name in names) or "none"
        if self.problems:
            text += f"; {len(self.problems)} descriptor(s) could not be loaded (see `taskapi apps list`)"
        return text


class AppManager:
    """Finds, adds, enables and disables app builds; `data_dir` defaults to `default_data_dir()`."""

    def __init__(self, data_dir: Path | None = None, builtin_roots: Sequence[Path] = BUILTIN_ROOTS) -> None:
        self.data_dir = data_dir if data_dir is not None else default_data_dir()
        self.builtin_roots = tuple(builtin_roots)
        self._state = EnabledState(self.data_dir / "appmanager.sqlite")

    @property
    def apps_dir(self) -> Path:
        """Where added descriptors live."""
        return self.data_dir / "apps"

    def inventory(self) -> Inventory:
        """Load every descriptor now (shipped first; a second file with the same id is ignored)."""
        choices = self._state.choices()
        apps: dict[str, App] = {}
        problems: list[DescriptorError] = []
        for path, builtin in self._descriptor_files():
            try:
                descriptor = load_descriptor(path)
                identity = app_id(descriptor)
            except DescriptorError as exc:
                problems.append(exc)
                continue
            except Exception as exc:  # one unusable file must never hide every other app
                reason = f"cannot be loaded: {type(exc).__name__}: {str(exc)[:200]}"
                problems.append(DescriptorError(path, [FieldProblem("", reason)]))
                continue
            enabled = choices.get(identity, builtin)
            apps.setdefault(identity, App(identity, descriptor, path, builtin, enabled))
        ordered = sorted(apps.values(), key=lambda a: (a.name, a.environment, a.version, str(a.path)))
        return Inventory(ordered, problems)

    def find(self, name_or_id: str, env: str | None = None) -> list[App]:
        """Every build (enabled or not) with this name, or the one with this id or unique id prefix,
        limited to environment `env` when given. Raises UnknownApp / AppNotAvailable naming what exists."""
        inventory = self.inventory()
        builds = _match(inventory, name_or_id)
        if env is None:
            return builds
        known = environments()
        if env not in known:
            raise AppNotAvailable(f"unknown environment {env!r}; environments: {', '.join(known)}")
        chosen = [app for app in builds if app.environment == env]
        if not chosen:
            have = ", ".join(sorted({app.environment for app in builds}))
            raise AppNotAvailable(f"app {name_or_id!r} has no build for environment {env!r}; it has: {have}")
        return chosen

    def resolve(self, name_or_id: str, env: str | None = None) -> App:
        """The one enabled build to use: in `env`, or by default in the environment first by
        `environments.registry.preference` (sandboxed, deterministic, metered, no GPU) that has one.
        Raises AppDisabled, or AppNotAvailable when several qualify."""
        builds = [app for app in self.find(name_or_id, env) if app.enabled]
        if not builds:
            where = f" for environment {env!r}" if env else ""
            raise AppDisabled(
                f"app {name_or_id!r} is disabled{where}; enable it with `taskapi apps enable {name_or_id}`; "
                f"known apps: {self.inventory().known()}"
            )
        chosen_env = env or by_preference({app.environment for app in builds})[0]
        builds = [app for app in builds if app.environment == chosen_env]
        if len(builds) > 1:
            listed = "; ".join(f"{app.label()} at {app.path}" for app in builds)
            raise AppNotAvailable(
                f"app {name_or_id!r} has {len(builds)} enabled builds for environment {chosen_env!r}: "
                f"{listed}; disable all but one with `taskapi apps disable ID`"
            )
        return builds[0]

    def add(self, path: Path, *, enable: bool = False) -> App:
        """Validate the descriptor at `path` (a file, or a folder holding descriptor.json) and copy it,
        with its wasm module, into the data dir. Adding a known descriptor again changes nothing but
        `enable`. Raises DescriptorError."""
        source = path / DESCRIPTOR_FILE if path.is_dir() else path
        descriptor = load_descriptor(source)
        identity = app_id(descriptor)
        if not any(app.app_id == identity for app in self.inventory().apps):
            self._copy_in(source, descriptor, identity)
        if enable:
            self._state.set(identity, True, name=descriptor.name, environment=descriptor.environment)
        (added,) = self.find(identity)
        return added

    def enable(self, name_or_id: str, env: str | None = None) -> list[App]:
        """Enable every build `find` matches; returns them as they are now."""
        return self._set_enabled(self.find(name_or_id, env), True)

    def disable(self, name_or_id: str, env: str | None = None) -> list[App]:
        """Disable every build `find` matches; returns them as they are now."""
        return self._set_enabled(self.find(name_or_id, env), False)

    def _set_enabled(self, apps: list[App], enabled: bool) -> list[App]:
        for app in apps:
            self._state.set(app.app_id, enabled, name=app.name, environment=app.environment)
        return [dataclasses.replace(app, enabled=enabled) for app in apps]

    def _copy_in(self, source: Path, descriptor: Descriptor, identity: str) -> None:
        """Copy into `<data>/apps/<name>-<env>-<id prefix>/` through a staging folder (never half there)."""
        self.apps_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".adding-", dir=self.apps_dir))
        try:
            shutil.copyfile(source, staging / DESCRIPTOR_FILE)
            if isinstance(descriptor, WasmDescriptor):
                target = staging / descriptor.prerequisites.module
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(module_path(descriptor, source), target)
            load_descriptor(staging / DESCRIPTOR_FILE)
            final = self.apps_dir / f"{descriptor.name}-{descriptor.environment}-{identity[:12]}"
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _descriptor_files(self) -> Iterable[tuple[Path, bool]]:
        for root in self.builtin_roots:
            for path in sorted(root.glob(f"*/{DESCRIPTOR_FILE}")):
                yield path, True
        for pattern in ("*.json", f"*/{DESCRIPTOR_FILE}"):
            for path in sorted(self.apps_dir.glob(pattern)):
                if not path.relative_to(self.apps_dir).parts[0].startswith("."):  # skips `add`'s staging
                    yield path, False


def _match(inventory: Inventory, name_or_id: str) -> list[App]:
    """Builds named `name_or_id`, else the build with that id or unique id prefix."""
    named = [app for app in inventory.apps if app.name == name_or_id]
    if named:
        return named
    key = name_or_id.lower()
    if len(key) >= MIN_ID_PREFIX:
        by_id = [app for app in inventory.apps if app.app_id.startswith(key)]
        if len(by_id) == 1:
            return by_id
        if by_id:
            listed = ", ".join(app.label() for app in by_id)
            raise AppNotAvailable(f"id prefix {name_or_id!r} matches several apps: {listed}; give more of it")
    raise UnknownApp(f"unknown app {name_or_id!r}; known apps: {inventory.known()}")
