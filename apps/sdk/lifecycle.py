"""Drives one app through a whole task over real gRPC, with local provider processes and no network.

create -> (next subtask -> compute on a provider -> deliver the result -> verify)* -> done

This is how app authors try an app end to end, and what `taskapi run` uses until the node takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grpclib.exceptions import GRPCError

from apps.sdk.client import ProviderAppClient, RequestorAppClient
from apps.sdk.handlers import JsonDict, Subtask, VerifyResult
from apps.sdk.process import AppProcess
from apps.sdk.sandboxed_files import copy_file
from apps.sdk.workdir import ProviderTaskDir, RequestorWorkDir, check_id

log = logging.getLogger(__name__)


class LifecycleError(RuntimeError):
    """The task could not be completed; the message says why."""


@dataclass
class TaskProgress:
    """Counts reported after every change, for progress bars."""

    verified: int = 0
    failed: int = 0
    in_flight: int = 0


@dataclass
class TaskOutcome:
    """What a finished task produced."""

    task_id: str
    env_id: str
    outputs_dir: Path
    outputs: list[Path]
    progress: TaskProgress = field(default_factory=TaskProgress)


ProgressCallback = Callable[[TaskProgress], None]


class LocalLifecycle:
    """Runs a requestor app and `providers` provider apps as local processes and completes one task.

    `provider_mode` is "persistent" (one long-lived provider server per slot) or "per_call"
    (Golem's convention: a fresh provider server for every Compute, which exits after it).
    """

    def __init__(
        self,
        app_command: list[str],
        work_root: Path,
        *,
        providers: int = 1,
        provider_mode: str = "persistent",
        max_failures: int = 3,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if providers < 1:
            raise ValueError(f"providers must be >= 1, got {providers}")
        if provider_mode not in ("persistent", "per_call"):
            raise ValueError(f"provider_mode must be 'persistent' or 'per_call', got {provider_mode!r}")
        self.app_command = app_command
        self.work_root = work_root
        self.providers = providers
        self.provider_mode = provider_mode
        self.max_failures = max_failures
        self._on_progress = on_progress or (lambda progress: None)

    async def run(self, task_id: str, params: JsonDict, max_subtasks: int) -> TaskOutcome:
        """Create the task, compute and verify subtasks until none are pending; return the outputs."""
        check_id("task id", task_id)
        requestor = AppProcess(self.app_command, "requestor", self.work_root / "requestor")
        client = RequestorAppClient(await requestor.start())
        try:
            created = await client.create_task(task_id, max_subtasks, params)
            run = _TaskRun(self, client, task_id)
            await run.complete()
            task_dir = RequestorWorkDir(requestor.work_dir).task_dir(task_id)
            outputs = sorted(p for p in task_dir.task_outputs.rglob("*") if p.is_file())
            return TaskOutcome(task_id, created.env_id, task_dir.task_outputs, outputs, run.progress)
        finally:
            with contextlib.suppress(GRPCError):
                await client.shutdown()
            client.close()
            await requestor.wait(timeout=15)


class _TaskRun:
    """The state of one task being driven: workers, counters and the end condition."""

    def __init__(self, owner: LocalLifecycle, client: RequestorAppClient, task_id: str) -> None:
        self.owner = owner
        self.client = client
        self.task_id = task_id
        self.progress = TaskProgress()
        self.task_dir = RequestorWorkDir(owner.work_root / "requestor").task_dir(task_id)
        self._ids = itertools.count()
        self._changed = asyncio.Event()

    async def complete(self) -> None:
        workers = [self._worker(slot) for slot in range(self.owner.providers)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            with contextlib.suppress(GRPCError):
                await self.client.abort_task(self.task_id)
            raise

    def _report(self) -> None:
        self.owner._on_progress(self.progress)
        self._changed.set()

    async def _worker(self, slot: int) -> None:
        node_id = f"local-provider-{slot}"
        provider = _ProviderSlot(self.owner, self.owner.work_root / "providers" / str(slot) / self.task_id)
        try:
            while True:
                subtask_id = f"{self.task_id}-{next(self._ids)}"
                subtask = await self.client.next_subtask(self.task_id, subtask_id, node_id)
                if subtask is None:
                    if self.progress.in_flight == 0 and not await self.client.has_pending_subtasks(
                        self.task_id
                    ):
                        self._changed.set()
                        return
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.5)
                    continue
                self.progress.in_flight += 1
                try:
                    await self._compute_and_verify(provider, subtask_id, subtask)
                finally:
                    self.progress.in_flight -= 1
                    self._report()
        finally:
            await provider.close()

    async def _compute_and_verify(self, provider: _ProviderSlot, subtask_id: str, subtask: Subtask) -> None:
        try:
            self._copy_resources(subtask.resources, provider.task_dir)
            output = await provider.compute(self.task_id, subtask_id, subtask.params)
            self._deliver(provider.task_dir, output, subtask_id)
        except (GRPCError, OSError, ValueError) as exc:
            log.warning("subtask %s failed on the provider: %s", subtask_id, exc)
            await self.client.abort_subtask(self.task_id, subtask_id)
            self._count_failure(f"subtask {subtask_id} failed on the provider: {exc}")
            return
        verdict, reason = await self.client.verify(self.task_id, subtask_id)
        if verdict is VerifyResult.SUCCESS:
            self.progress.verified += 1
        elif verdict is VerifyResult.FAILURE:
            log.warning("subtask %s rejected: %s", subtask_id, reason)
            self._count_failure(f"subtask {subtask_id} rejected by Verify: {reason}")
        else:
            await self.client.abort_subtask(self.task_id, subtask_id)
            self._count_failure(f"subtask {subtask_id} verification {verdict.name}: {reason}")

    def _count_failure(self, message: str) -> None:
        self.progress.failed += 1
        if self.progress.failed > self.owner.max_failures:
            raise LifecycleError(f"task {self.task_id}: too many failures; last: {message}")

    def _copy_resources(self, resources: list[str], provider_dir: ProviderTaskDir) -> None:
        provider_dir.prepare()
        for name in resources:
            check_id("resource name", name)
            copy_file(self.task_dir.subtask_inputs, name, provider_dir.subtask_inputs / name)

    def _deliver(self, provider_dir: ProviderTaskDir, output: Path, subtask_id: str) -> None:
        """Copy the provider's output (a regular file in its task dir, reached without a link: else
        UnsafePath, a ValueError) into the subtask's outputs."""
        target_dir = self.task_dir.subtask_outputs(subtask_id)
        target_dir.mkdir(parents=True, exist_ok=True)
        copy_file(provider_dir.root, output, target_dir / output.name)


class _ProviderSlot:
    """One local provider: a long-lived app server, or a fresh one per Compute (Golem's convention)."""

    def __init__(self, owner: LocalLifecycle, task_root: Path) -> None:
        self.task_dir = ProviderTaskDir(task_root)
        self._command = owner.app_command
        self._persistent = owner.provider_mode == "persistent"
        self._process: AppProcess | None = None
        self._client: ProviderAppClient | None = None

    async def compute(self, task_id: str, subtask_id: str, params: JsonDict) -> Path:
        if self._client is None or self._process is None or not self._process.running:
            await self.close()
            self._process = AppProcess(
                self._command, "provider", self.task_dir.root, persistent=self._persistent
            )
            self._client = ProviderAppClient(await self._process.start())
        try:
            return await self._client.compute(task_id, subtask_id, params)
        finally:
            if not self._persistent:
                await self.close()

    async def close(self) -> None:
        """Shut the provider server down (or wait for a single-call one to exit)."""
        if self._client is not None and self._process is not None:
            if self._process.running and self._persistent:
                with contextlib.suppress(GRPCError):
                    await self._client.shutdown()
            self._client.close()
            await self._process.wait(timeout=15)
        self._client = None
        self._process = None
