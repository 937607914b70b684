"""One container as a generic `Runtime`: prepare checks the image and creates the container, start starts
it, stop kills it, clean_up removes it.

A container that exits with code 0 ends STOPPED; a non-zero exit, a kill by the memory limit, or the deadline
(`DockerLimits.wall_time_s`, after which the container is killed) ends FAILURE with a reason that says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from apps.sdk.backoff import Backoff
from environments.base import Runtime, UsageCounters
from environments.docker.engine import EngineUnavailable
from environments.docker.spec import (
    DockerLimits,
    DockerRun,
    adopt_work_dir,
    container_settings,
    container_user,
)
from environments.docker.usage import StatsSampler, wall_ms

if TYPE_CHECKING:
    from environments.docker.environment import DockerEnvironment

WAIT_POLL_S = 30
ENGINE_LOST_S = 60.0
"""How long a wait for a container's exit goes on while the engine does not answer."""
LOG_TAIL_BYTES = 2000


class DockerRuntime(Runtime):
    """The lifecycle of one `DockerRun` in a docker environment."""

    def __init__(self, environment: DockerEnvironment, run: DockerRun, limits: DockerLimits) -> None:
        super().__init__(f"{environment.env_id} runtime of {run.image}")
        self.environment = environment
        self.run = run
        self.limits = limits
        self.container: Any = None
        self.exit_code: int | None = None
        self.oom_killed = False
        self.deadline_passed = False
        self._sampler: StatsSampler | None = None
        self._wall_ms = 0.0

    @property
    def engine(self) -> Any:
        return self.environment.engine

    def usage(self) -> UsageCounters:
        if self._sampler is None:
            return UsageCounters()
        return self._sampler.usage(self._wall_ms)

    async def snapshot_usage(self) -> None:
        """Sample the running container's counters now (exact CPU and peak memory at this moment)."""
        if self._sampler is not None:
            await self.engine.call(self._sampler.snapshot)

    async def logs(self, limit: int = LOG_TAIL_BYTES) -> str:
        """The tail of the container's stdout and stderr."""
        if self.container is None:
            return ""
        with contextlib.suppress(Exception):
            raw: bytes = await self.engine.call(self.container.logs, stdout=True, stderr=True, tail=200)
            return raw.decode(errors="replace")[-limit:]
        return ""

    async def address(self) -> str:
        """The container's IP address on the internal app network (for runs with network "internal")."""
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        address: str = networks[self.environment.app_network]["IPAddress"]
        if not address:
            raise RuntimeError(f"container {self.container.short_id} has no address on the app network")
        return address

    async def _prepare(self) -> None:
        await self.environment.check_image(self.run.image)
        user = self.run.user or container_user(self.run.work_dir)
        if self.run.work_dir is not None:
            self.run.work_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(adopt_work_dir, self.run.work_dir, *user)
        settings = container_settings(
            self.run,
            self.limits,
            env_id=self.environment.env_id,
            user=user,
            app_network=self.environment.app_network if self.run.network == "internal" else None,
            gpu=self.environment.gpu_passthrough(),
        )
        self.container = await self.engine.call(self.engine.client.containers.create, **settings)
        self.environment.containers.add(self.container.id)

    async def _start(self) -> Awaitable[str | None]:
        await self.engine.call(self.container.start)
        await self.engine.call(self.container.reload)
        self._sampler = StatsSampler(self.container, self.container.attrs["State"].get("Pid") or None)
        self._sampler.start()
        return self._complete()

    async def _wait_exit(self) -> None:
        """Wait for the container to exit: the engine's wait, long-polled. While the engine does not
        answer, the call is tried again with backoff (never in a tight loop); after ENGINE_LOST_S without
        an answer, EngineUnavailable."""
        import requests

        backoff = Backoff(max_s=5.0)
        unanswered_since: float | None = None
        while True:
            try:
                await self.engine.call(self.container.wait, timeout=WAIT_POLL_S)
                return
            except requests.exceptions.ConnectionError as exc:
                now = time.monotonic()
                unanswered_since = unanswered_since or now
                if now - unanswered_since > ENGINE_LOST_S:
                    raise EngineUnavailable(
                        f"the Docker engine stopped answering while container {self.container.short_id}"
                        f" ran: {exc}"
                    ) from exc
                await asyncio.sleep(backoff.next_delay())
            except requests.exceptions.ReadTimeout:  # still running: wait again
                backoff.reset()
                unanswered_since = None

    async def _complete(self) -> str | None:
        deadline = self.limits.wall_time_s
        try:
            await asyncio.wait_for(self._wait_exit(), deadline)
        except TimeoutError:
            self.deadline_passed = True
            with contextlib.suppress(Exception):
                await self.engine.call(self.container.kill)
            await self._wait_exit()
        await self.engine.call(self.container.reload)
        state = self.container.attrs["State"]
        self._wall_ms = wall_ms(state)
        self.exit_code = int(state.get("ExitCode", -1))
        self.oom_killed = bool(state.get("OOMKilled"))
        return await self._describe_exit()

    async def _describe_exit(self) -> str | None:
        if self.deadline_passed:
            return f"deadline of {self.limits.wall_time_s:g} s passed: the container was stopped"
        if self.oom_killed:
            return (
                f"killed by the memory limit of {self.limits.memory_bytes // (1024 * 1024)} MiB "
                f"(exit code {self.exit_code})"
            )
        if self.exit_code != 0:
            return f"exited with code {self.exit_code}: {(await self.logs(500)).strip()}"
        return None

    async def _stop(self) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            await self.engine.call(self.container.kill)
        await self._wait_exit()

    async def _clean_up(self) -> None:
        import docker

        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                await self.engine.call(self.container.remove, force=True)
            self.environment.containers.discard(self.container.id)
