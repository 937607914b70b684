"""The app under test: one build, how to start its servers, and what exactly was tested (id and digest).

`target_of(app)` turns an app manager build into a `Target`:

- served as the node serves it, by its environment (`runtime.serving.serving_of`);
- its digest by what the build is: of a Python package (`local`), the sha256 of the package's files; of a
  wasm module, the module's sha256 (checked against the descriptor when the build was loaded); of a
  container image, the local image id.

`command_target` makes a target of any command that serves `requestor|provider PORT` (tests' planted-bug
apps, apps not installed in the app manager).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.app_serving import AppServing, CommandServing
from environments.base import PayloadKind
from environments.local import LocalEnvironment
from environments.registry import UnknownEnvironment, payload_kind
from runtime.appmanager import App, DockerDescriptor, LocalDescriptor, ParamSpec, WasmDescriptor
from runtime.serving import serving_of

DIGEST_KINDS = {
    PayloadKind.PYTHON_PACKAGE: "sha256 of the Python package's files",
    PayloadKind.WASM_MODULE: "sha256 of the wasm module",
    PayloadKind.CONTAINER_IMAGE: "docker image id",
}
"""What a target's digest is a hash of, by what its environment's builds are."""


def digest_kind(environment: str) -> str:
    """What the digest of a target in `environment` is a hash of ("command line" for an environment that
    is not installed)."""
    try:
        return DIGEST_KINDS[payload_kind(environment)]
    except UnknownEnvironment:
        return "command line"


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


@dataclass(frozen=True)
class Target:
    """One app build under test."""

    name: str
    version: str
    environment: str
    app_id: str
    digest: str
    serving: AppServing = field(repr=False)
    parameters: Mapping[str, ParamSpec] = field(default_factory=dict)
    wasm_module: Path | None = None

    def label(self) -> str:
        return f"{self.name} {self.version} ({self.environment}, {self.app_id[:12]})"


def command_target(
    name: str,
    command: list[str],
    *,
    parameters: Mapping[str, ParamSpec] | None = None,
    environment: str = LocalEnvironment.env_id,
    version: str = "0",
    app_id: str | None = None,
    digest: str | None = None,
    wasm_module: Path | None = None,
) -> Target:
    """A target served by a local command; id and digest default to hashes of the command line."""
    fingerprint = hashlib.sha256("\0".join(command).encode()).hexdigest()
    return Target(
        name=name,
        version=version,
        environment=environment,
        app_id=app_id or fingerprint,
        digest=digest or f"sha256:{fingerprint}",
        serving=CommandServing(command),
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
        return Target(
            **common,
            digest=f"sha256:{descriptor.prerequisites.sha256}",
            serving=serving_of(app),
            wasm_module=app.module,
        )
    if isinstance(descriptor, LocalDescriptor):
        return Target(
            **common, digest=package_digest(descriptor.prerequisites.module), serving=serving_of(app)
        )
    if isinstance(descriptor, DockerDescriptor):
        prerequisites = descriptor.prerequisites
        reference = f"{prerequisites.image}:{prerequisites.tag}"
        return Target(**common, digest=prerequisites.digest or image_id(reference), serving=serving_of(app))
    raise ValueError(f"{app.label()}: environment {app.environment} is not supported")


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
