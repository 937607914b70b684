"""The Docker engine: a client (docker SDK, `DOCKER_HOST` or the default socket), whether one answers, the
internal app network, and a thread pool for the SDK's blocking calls.

The SDK is synchronous; every call goes through `Engine.call`, which runs it on the engine's own executor so
that long waits (a container's exit, a stats stream) never starve asyncio's default pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from environments.base import Support

T = TypeVar("T")

APP_NETWORK = "taskapi-apps"
"""The internal network app servers join: no route out, and no traffic between containers (icc off)."""

PING_TIMEOUT_S = 5
MAX_BLOCKING_CALLS = 64


class EngineUnavailable(RuntimeError):
    """No Docker engine answers (or the docker SDK is missing); the message says which."""


def connect(base_url: str | None = None, timeout: int = 120) -> Any:
    """A docker SDK client for `base_url` (default: `DOCKER_HOST`, else the local socket)."""
    try:
        import docker
    except ImportError as exc:
        raise EngineUnavailable("the Python package docker (the Docker SDK) is not installed") from exc
    try:
        if base_url is None:
            return docker.from_env(timeout=timeout, max_pool_size=MAX_BLOCKING_CALLS)
        return docker.DockerClient(base_url=base_url, timeout=timeout, max_pool_size=MAX_BLOCKING_CALLS)
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"no Docker engine answers: {exc}") from exc


def engine_support(base_url: str | None = None) -> Support:
    """Whether a Docker engine answers, with its version (cheap: one ping, starts nothing)."""
    try:
        client = connect(base_url, timeout=PING_TIMEOUT_S)
    except EngineUnavailable as exc:
        return Support(False, str(exc))
    try:
        version = client.version()
    except Exception as exc:
        return Support(False, f"no Docker engine answers: {type(exc).__name__}: {exc}")
    finally:
        client.close()
    return Support(
        True, f"Docker engine {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
    )


class Engine:
    """One client and the executor its blocking calls run on."""

    def __init__(self, base_url: str | None = None) -> None:
        self.client = connect(base_url)
        self._executor = concurrent.futures.ThreadPoolExecutor(MAX_BLOCKING_CALLS, "docker-engine")

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call on the engine's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    def runtimes(self) -> set[str]:
        """The container runtimes the engine offers (e.g. runc, nvidia)."""
        return set(self.client.info().get("Runtimes", {}))

    def ensure_app_network(self, name: str = APP_NETWORK) -> str:
        """Create the internal app network unless it exists; return its name."""
        import docker

        try:
            network = self.client.networks.get(name)
        except docker.errors.NotFound:
            network = self.client.networks.create(
                name,
                driver="bridge",
                internal=True,
                options={"com.docker.network.bridge.enable_icc": "false"},
                labels={"org.taskapi.network": "apps"},
            )
        attrs = network.attrs
        if not attrs.get("Internal"):
            raise EngineUnavailable(f"docker network {name} exists but is not internal: refusing to use it")
        return name

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()
