"""A docker app's task-api server for the node: the image's entrypoint run as `requestor PORT` or
`provider PORT`, with the work dir at /golem/work.

It has the same surface as `apps.sdk.process.AppProcess` (`start() -> Channel`, `running`, `wait`, `kill`,
`log_tail`), so the node can hold either. The container joins the environment's internal network (no
egress, no traffic to other containers) and listens on `APP_PORT` inside its own network namespace; the
node dials the container's address on that network. No port is published on the host at all.

`DockerAppServing` is how a docker environment serves one build (`DockerEnvironment.app_serving`): on an
environment of the build's class that admits only the build's image.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.client import wait_until_serving
from environments.app_serving import AppLauncher, AppRole, AppServer
from environments.base import UsageCounters
from environments.docker.environment import DockerEnvironment
from environments.docker.runtime import DockerRuntime
from environments.docker.spec import DockerLimits, DockerRun, adopt_work_dir, container_user
from environments.status import EnvStatus, RuntimeStatus

APP_PORT = 50051
"""The port app servers listen on inside their container (each has its own network namespace)."""

START_TIMEOUT_S = 60.0


class DockerAppServer:
    """One app server container serving `work_dir` in `role` ("requestor" or "provider").

    `limits` default to the environment's; a requestor server (long-lived) gets no deadline by default.
    """

    def __init__(
        self,
        environment: DockerEnvironment,
        image: str,
        role: str,
        work_dir: Path,
        *,
        persistent: bool = True,
        limits: DockerLimits | None = None,
    ) -> None:
        if role not in ("requestor", "provider"):
            raise ValueError(f"role must be requestor or provider, got {role!r}")
        self.environment = environment
        self.image = image
        self.role = role
        self.work_dir = work_dir
        self.persistent = persistent
        command = [role, str(APP_PORT), "--host", "0.0.0.0"]
        if persistent and role == "provider":
            command.append("--persistent")
        if limits is None:
            limits = environment.config.limits
            if role == "requestor":  # long-lived: no deadline
                limits = limits.model_copy(update={"wall_time_s": None})
        run = DockerRun(image=image, command=tuple(command), work_dir=work_dir, network="internal")
        self._runtime = DockerRuntime(environment, run, limits)
        self._log_tail = ""

    @property
    def running(self) -> bool:
        return self._runtime.status() is RuntimeStatus.RUNNING

    async def start(self, timeout: float = START_TIMEOUT_S) -> Channel:
        """Start the container and return a channel once the app answers health checks.

        Raises GRPCError(UNAVAILABLE) with the container's reason and log tail if it never becomes healthy.
        """
        await self.environment.ensure_app_network()
        try:
            await self._runtime.prepare()
            await self._runtime.start()
            host = await self._runtime.address()
        except Exception as exc:
            await self._discard()
            raise GRPCError(Status.UNAVAILABLE, f"app {self.role} container did not start: {exc}") from exc
        healthy = asyncio.ensure_future(wait_until_serving(host, APP_PORT, timeout))
        ended = asyncio.ensure_future(self._runtime.wait())
        await asyncio.wait({healthy, ended}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        if healthy.done() and not healthy.cancelled() and healthy.exception() is None:
            return healthy.result()
        healthy.cancel()
        reason = (
            f"ended: {self._runtime.failure_reason or 'exited'}" if ended.done() else str(healthy.exception())
        )
        self._log_tail = await self._runtime.logs()
        await self.kill()
        raise GRPCError(Status.UNAVAILABLE, f"app {self.role} container {reason}; app log: {self._log_tail}")

    def usage(self) -> UsageCounters:
        """What the container used (see `snapshot_usage`)."""
        return self._runtime.usage()

    async def snapshot_usage(self) -> None:
        """Sample the container's CPU time and peak memory now, while it still runs."""
        await self._runtime.snapshot_usage()

    @property
    def failure_reason(self) -> str | None:
        """Why the container failed (memory limit, deadline, exit code), once it has."""
        return self._runtime.failure_reason

    def log_tail(self, limit: int = 2000) -> str:
        """The last output of the container, as of its end (or of the last `refresh_log`)."""
        return self._log_tail[-limit:]

    async def refresh_log(self) -> str:
        self._log_tail = await self._runtime.logs() or self._log_tail
        return self._log_tail

    async def wait(self, timeout: float) -> int | None:
        """Wait for the container to exit (kill it after `timeout`), remove it; return its exit code."""
        if self._runtime.status() in (RuntimeStatus.RUNNING, RuntimeStatus.STARTING):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._runtime.wait()), timeout)
        await self.kill()
        return self._runtime.exit_code

    async def kill(self) -> None:
        """Stop the container now (if it runs) and remove it."""
        if self._runtime.status() is RuntimeStatus.RUNNING:
            with contextlib.suppress(Exception):
                await self._runtime.stop()
        await self._discard()

    async def _discard(self) -> None:
        status = self._runtime.status()
        if status in (RuntimeStatus.STOPPED, RuntimeStatus.FAILURE, RuntimeStatus.PREPARED):
            if self.container_exists():
                self._log_tail = await self._runtime.logs() or self._log_tail
            with contextlib.suppress(Exception):
                await self._runtime.clean_up()

    def container_exists(self) -> bool:
        return self._runtime.container is not None


class DockerAppServing:
    """A docker build's servers: `DockerAppServer`s of image `reference` on `environment` (which admits only
    that image), enabled by `open()` and disabled, its containers removed, by `close()`."""

    def __init__(self, environment: DockerEnvironment, reference: str) -> None:
        self.environment = environment
        self.reference = reference

    async def open(self) -> AppLauncher:
        await self.environment.prepare()

        def launch(role: AppRole, work_dir: Path, persistent: bool) -> AppServer:
            return DockerAppServer(self.environment, self.reference, role, work_dir, persistent=persistent)

        return launch

    async def close(self) -> None:
        if self.environment.status() is not EnvStatus.DISABLED:
            await self.environment.clean_up()

    def hand_over(self, folder: Path) -> None:
        """Give the folder to the unprivileged user the containers run as, so the app can write there."""
        adopt_work_dir(folder, *container_user(folder))
