"""`local`: payloads are commands run as plain child processes of the node, in a work dir of their own.

Nothing is isolated (the declared capabilities say `sandboxed=False`): it exists so that an app author can
run a Python app before packaging it as a wasm module or a docker image. An app's servers are child
processes too (`app_server`, an `apps.sdk.process.AppProcess` on a free loopback port); an app that needs
its work dir at a fixed path sees it there in a private mount namespace (`with_work_dir_at`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path

from apps.sdk.parent import PARENT_PID_ENV
from apps.sdk.process import AppProcess, python_app_command
from environments.app_serving import AppLauncher, AppPayload, AppRole, AppServer
from environments.base import (
    BenchmarkResult,
    Capabilities,
    EnvConfig,
    Environment,
    PayloadKind,
    Prerequisites,
    PrerequisitesRefused,
    Runtime,
    Support,
    UsageCounters,
    prerequisites_of,
)
from environments.status import EnvStatus

BENCHMARK_HASHES = 200_000
"""sha256 digests the benchmark child computes; its score is millions of them per wall-clock second."""
BENCHMARK_SCRIPT = (
    "import hashlib\n"
    "digest = b''\n"
    f"for _ in range({BENCHMARK_HASHES}):\n"
    "    digest = hashlib.sha256(digest).digest()\n"
)
STOP_GRACE_S = 5.0


def with_work_dir_at(command: Sequence[str], work_dir: str) -> list[str]:
    """`command` run where its current directory (the node's work dir for it) is also seen at `work_dir`
    (an app that insists on a fixed path, as Golem's SDK apps do with /golem/work): a private mount
    namespace (`unshare --mount`, root only) bind-mounts it there, invisibly to the rest of the machine.
    The empty mount point is created once on the host if missing. `PrerequisitesRefused` says why not."""
    if os.geteuid() != 0:
        raise PrerequisitesRefused(
            f"the app needs its work dir at {work_dir}, which the node binds there in a private "
            "mount namespace (unshare --mount), and that needs root; run the node as root, or serve the app "
            "in docker, where the work dir is mounted at /golem/work"
        )
    if shutil.which("unshare") is None:
        raise PrerequisitesRefused(f"the app needs its work dir at {work_dir}, and unshare is missing")
    bind = 'mkdir -p "$0" && mount --bind "$PWD" "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", bind, work_dir, *command]


class LocalConfig(EnvConfig):
    """Settings of the local environment (only the common ones)."""


class LocalPrerequisites(Prerequisites):
    """A local app needs its Python package importable by the node's interpreter.

    Its servers run `python -m MODULE` on the node's interpreter unless `command` names the app's own (a
    relative program path is resolved against the descriptor's folder); `work_dir` is the absolute path
    the app insists its work dir is at (`with_work_dir_at`). The app manager's descriptor checks both.
    """

    module: str
    command: list[str] | None = None
    work_dir: str | None = None


@dataclass(frozen=True)
class LocalRun:
    """One command run as a child process in `work_dir` (made if missing); its output goes to `log`."""

    command: Sequence[str]
    work_dir: Path
    log: Path | None = None


class LocalRuntime(Runtime):
    """The lifecycle of one `LocalRun`: start spawns the process, stop kills it (SIGTERM, then SIGKILL).

    A process that exits 0 ends STOPPED; any other exit code ends FAILURE with it.
    """

    def __init__(self, run: LocalRun) -> None:
        super().__init__(f"local runtime of {run.command[0]}")
        self.run = run
        self._process: asyncio.subprocess.Process | None = None
        self._began = 0.0
        self._ended: float | None = None

    def usage(self) -> UsageCounters:
        if self._process is None:
            return UsageCounters()
        ended = self._ended if self._ended is not None else time.monotonic()
        return UsageCounters(wall_ms=(ended - self._began) * 1000)

    async def _prepare(self) -> None:
        self.run.work_dir.mkdir(parents=True, exist_ok=True)

    async def _start(self) -> Awaitable[str | None]:
        log = self.run.log or self.run.work_dir / ".local-run.log"
        with open(log, "ab") as output:
            self._began = time.monotonic()
            self._process = await asyncio.create_subprocess_exec(
                *self.run.command,
                cwd=self.run.work_dir,
                stdout=output,
                stderr=output,
                env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
            )
        return self._complete(self._process)

    async def _complete(self, process: asyncio.subprocess.Process) -> str | None:
        code = await process.wait()
        self._ended = time.monotonic()
        return None if code == 0 else f"{self.run.command[0]} exited with code {code}"

    async def _stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def _clean_up(self) -> None:
        """Nothing to release: the work dir and its log belong to the caller."""


class LocalEnvironment(Environment[LocalRun, LocalPrerequisites, LocalConfig]):
    """Plain child processes on this machine: no sandbox, no meter; for app development only."""

    env_id = "local"
    declared_capabilities = Capabilities(
        deterministic=False, metered=False, serves_apps=True, sandboxed=False
    )
    payload_kind = PayloadKind.PYTHON_PACKAGE
    prerequisites_type = LocalPrerequisites

    def __init__(self, config: LocalConfig | None = None) -> None:
        super().__init__(config or LocalConfig())

    @classmethod
    def support(cls) -> Support:
        return Support(
            True,
            f"Python {platform.python_version()} child processes, no sandbox (for app development only)",
        )

    async def _prepare(self) -> None:
        """Nothing to start: processes are made per run."""

    async def _clean_up(self) -> None:
        """Nothing to stop: each runtime and app server is stopped by its owner."""

    async def install_prerequisites(self, prerequisites: LocalPrerequisites) -> None:
        """Refuse a package the node's interpreter cannot import."""
        try:
            found = importlib.util.find_spec(prerequisites.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise PrerequisitesRefused(f"Python module {prerequisites.module!r} is not importable here")

    async def benchmark(self) -> BenchmarkResult:
        """Time a child Python process chaining sha256 digests; score = millions of digests per second."""
        with tempfile.TemporaryDirectory(prefix="taskapi-local-bench-") as work_dir:
            runtime = self.runtime(LocalRun([sys.executable, "-c", BENCHMARK_SCRIPT], Path(work_dir)))
            await runtime.prepare()
            await runtime.start()
            await runtime.wait()
            await runtime.clean_up()
            if runtime.failure_reason is not None:
                raise RuntimeError(f"the local benchmark failed: {runtime.failure_reason}")
            usage = runtime.usage()
        return BenchmarkResult(score=BENCHMARK_HASHES / 1e6 / (usage.wall_ms / 1000), usage=usage)

    def runtime(self, payload: LocalRun, config: LocalConfig | None = None) -> LocalRuntime:
        """A runtime for one command (the config has nothing that applies to one run)."""
        return LocalRuntime(payload)

    def app_server(
        self, command: Sequence[str], role: str, work_dir: Path, *, persistent: bool = True
    ) -> AppProcess:
        """The app server of `command` (`<command> requestor|provider PORT`) serving `work_dir`, as a child
        process that dies with the node."""
        self.require_enabled()
        return AppProcess(list(command), role, work_dir, persistent=persistent)

    @classmethod
    def app_command(cls, payload: AppPayload) -> list[str]:
        """The command serving a build (`... requestor|provider PORT`): the app's own `command` (a relative
        program path resolved against the descriptor's folder) or `python -m MODULE`, wrapped to see its
        work dir at `work_dir` if it names one; `PrerequisitesRefused` when it cannot be served here."""
        prerequisites = prerequisites_of(LocalPrerequisites, payload)
        if prerequisites.command is None:
            command = python_app_command(prerequisites.module)
        else:
            program, *arguments = prerequisites.command
            if "/" in program and not Path(program).is_absolute():
                program = str((payload.folder / program).absolute())
            command = [program, *arguments]
        if prerequisites.work_dir is None:
            return command
        return with_work_dir_at(command, prerequisites.work_dir)

    @classmethod
    def app_serving(cls, payload: AppPayload) -> LocalServing:
        """A build's servers as child processes an environment of this class starts (`app_server`)."""
        return LocalServing(cls(), cls.app_command(payload))


class LocalServing:
    """A Python-package build served by `LocalEnvironment.app_server`: enabled by `open()`, disabled by
    `close()`."""

    def __init__(self, environment: LocalEnvironment, command: Sequence[str]) -> None:
        self.environment = environment
        self.command = list(command)

    async def open(self) -> AppLauncher:
        await self.environment.prepare()

        def launch(role: AppRole, work_dir: Path, persistent: bool) -> AppServer:
            return self.environment.app_server(self.command, role, work_dir, persistent=persistent)

        return launch

    async def close(self) -> None:
        if self.environment.status() is EnvStatus.ENABLED:
            await self.environment.clean_up()

    def hand_over(self, folder: Path) -> None:
        """Nothing to do: the servers run as the node's user."""
