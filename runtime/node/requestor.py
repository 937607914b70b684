"""The requestor: runs tasks through their apps, hands subtasks to providers under leases, verifies results.

Every state change is written to the SQLite store before the caller is answered, so a requestor killed
at any point and restarted on the same data dir resumes: live leases are kept (providers may still
deliver), interrupted requests are reconciled with the app, delivered results are verified again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import VerifyResult
from apps.sdk.workdir import RequestorTaskDir, RequestorWorkDir, check_id
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.app_servers import AppServers, ResolvedApp, resolve_app
from runtime.node.market import Balanced, MarketStrategy, ProviderOffer
from runtime.node.metrics import BYTES, FUEL, SUBTASKS, VERIFICATIONS
from runtime.node.resources import ResourceRegistry
from runtime.node.store import LIVE_SUBTASK_STATES, Store, TaskRow, now_ms
from runtime.node.verification import Verification, VerificationConfig

log = logging.getLogger(__name__)


class NodeError(Exception):
    """A request the requestor refuses; carries the gRPC status to answer with."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class RequestorConfig:
    lease_ms: int = 30_000
    heartbeat_ms: int = 5_000
    max_result_bytes: int = 64 * 1024 * 1024
    max_failures: int = 20
    reap_interval_s: float = 0.5
    verification: VerificationConfig = field(default_factory=VerificationConfig)


@dataclass
class ActiveTask:
    row: TaskRow
    app: ResolvedApp
    client: RequestorAppClient
    task_dir: RequestorTaskDir
    module: npb.Resource | None = None
    """The app's wasm module as providers fetch it (hashed once, at activation)."""
    refused_by: set[str] = field(default_factory=set)


class RequestorNode:
    """Owns tasks, subtasks and leases; serves providers (through the node protocol) and the control API."""

    def __init__(
        self,
        data_dir: Path,
        config: RequestorConfig | None = None,
        market: MarketStrategy | None = None,
        app_manager: AppManager | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config or RequestorConfig()
        self.market = market or Balanced()
        self.store = Store(data_dir / "requestor.sqlite")
        self.resources = ResourceRegistry()
        self._apps = AppServers(data_dir / "app-work")
        self.app_manager = app_manager or AppManager(data_dir)
        self._active: dict[str, ActiveTask] = {}
        self.verification = Verification(
            data_dir, self.store, self._active.get, self._fail_task, self.config.verification
        )
        self._offers: dict[str, ProviderOffer] = {}
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self._verifying: set[asyncio.Future[tuple[str, str]]] = set()

    # lifecycle

    async def start(self) -> None:
        """Resume every active task from the store, then start expiring leases."""
        self._resume_leases()
        for row in self.store.tasks("active"):
            try:
                await self._activate(row)
                await self._reconcile(row.task_id)
            except (GRPCError, LookupError, OSError) as exc:
                log.error("task %s cannot resume: %s", row.task_id, exc)
                self.store.set_task_state(row.task_id, "failed", f"cannot resume: {exc}")
        self._reaper = asyncio.create_task(self._reap_forever())

    def _resume_leases(self) -> None:
        """After a restart, live leases get a full term again and their providers stay known.

        Nobody could heartbeat while this requestor was down, so a lease that ran out meanwhile says
        nothing about its provider; and that provider's heartbeats must renew it without a new Join.
        """
        deadline_ms = now_ms() + self.config.lease_ms
        with self.store.transaction():
            for subtask in self.store.subtasks(states=("assigned",)):
                self.store.renew_leases(subtask.provider_id, [subtask.subtask_id], deadline_ms)
                offer = self.store.provider_offer(subtask.provider_id)
                if offer is not None:
                    self._offers[subtask.provider_id] = ProviderOffer(**offer)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._apps.close()
        await self.verification.close()
        self.store.close()

    async def _activate(self, row: TaskRow) -> ActiveTask:
        app = resolve_app(self.app_manager, row.app, row.env_id)
        client = await self._apps.client(app)
        task_dir = RequestorWorkDir(self._apps.work_dir(app)).task_dir(row.task_id)
        active = ActiveTask(row, app, client, task_dir)
        if app.module is not None:
            digest = self.resources.register(app.module)
            active.module = npb.Resource(name=app.module.name, sha256=digest, size=app.module.stat().st_size)
        for subtask in self.store.subtasks(task_id=row.task_id, states=("assigned",)):
            for resource in subtask.resources:
                self.resources.register(task_dir.subtask_inputs / resource["name"], resource["sha256"])
        self._active[row.task_id] = active
        return active

    async def _reconcile(self, task_id: str) -> None:
        """After a restart: abandon requests the app may or may not have answered; re-verify deliveries."""
        active = self._active[task_id]
        for subtask in self.store.subtasks(task_id=task_id, states=("requested",)):
            with contextlib.suppress(GRPCError):
                await active.client.abort_subtask(task_id, subtask.subtask_id)
            self.store.set_subtask_state(subtask.subtask_id, "abandoned", "requestor restarted mid-request")
        for subtask in self.store.subtasks(task_id=task_id, states=("delivered",)):
            await self._verify(active, subtask.subtask_id)
        await self._maybe_finish(active)

    # control API

    async def submit_task(
        self, app_name: str, env: str | None, params: dict[str, Any], max_subtasks: int
    ) -> str:
        """Create a task through its app; returns the task id. Refusals keep the app's message."""
        try:
            app = resolve_app(self.app_manager, app_name, env or None)
        except LookupError as exc:
            raise NodeError(Status.NOT_FOUND, str(exc.args[0])) from exc
        try:
            params = app.descriptor.check_params(params)
        except ValueError as exc:
            raise NodeError(Status.INVALID_ARGUMENT, f"app {app_name}: {exc}") from exc
        task_id = f"{app_name}-{uuid.uuid4().hex[:12]}"
        row = TaskRow(task_id, app_name, app.app_id, app.env_id, params, max_subtasks, "active", "", {})
        self.store.add_task(row)
        try:
            client = await self._apps.client(app)
            created = await client.create_task(task_id, max_subtasks, params)
        except GRPCError as exc:
            self.store.set_task_state(task_id, "failed", exc.message or "")
            raise NodeError(exc.status, f"app {app_name} refused the task: {exc.message}") from exc
        self.store.set_task_prerequisites(task_id, app.env_id, created.prerequisites)
        await self._activate(self.store.task(task_id) or row)
        self._notify()
        log.info("task %s created (%s on %s)", task_id, app_name, app.env_id)
        return task_id

    def task_status(self, task_id: str) -> npb.TaskStatus:
        row = self.store.task(task_id)
        if row is None:
            raise NodeError(Status.NOT_FOUND, f"unknown task {task_id!r}")
        offers = {**self._offers}
        bills = []
        for bill in self.store.bills(task_id):
            offer = offers.get(bill["provider_id"])
            cost = self.market.cost(offer, row.env_id, bill["fuel"], bill["cpu_ns"]) if offer else 0.0
            bills.append(
                npb.ProviderBill(
                    provider_id=bill["provider_id"],
                    subtasks=bill["n"],
                    fuel=bill["fuel"],
                    cpu_ns=bill["cpu_ns"],
                    cost=cost,
                )
            )
        outputs = self._outputs_dir(task_id)
        return npb.TaskStatus(
            task_id=task_id,
            app=row.app,
            env_id=row.env_id,
            state=row.state,
            reason=row.reason,
            subtasks_by_state=self.store.count_by_state(task_id),
            outputs=[str(p.relative_to(outputs)) for p in sorted(outputs.rglob("*")) if p.is_file()],
            bills=bills,
            outputs_dir=str(outputs),
            trust=self.verification.report(task_id),
        )

    async def abort_task(
        self, task_id: str, reason: str = "aborted by the requestor", state: str = "aborted"
    ) -> None:
        """Stop a task: the app aborts it; live subtasks are cancelled (providers learn it by heartbeat)."""
        row = self.store.task(task_id)
        if row is None:
            raise NodeError(Status.NOT_FOUND, f"unknown task {task_id!r}")
        active = self._active.pop(task_id, None)
        if active is not None:
            with contextlib.suppress(GRPCError):
                await active.client.abort_task(task_id)
        with self.store.transaction():
            for subtask in self.store.subtasks(task_id=task_id, states=LIVE_SUBTASK_STATES):
                self.store.set_subtask_state(subtask.subtask_id, "aborted", reason)
            if row.state == "active":
                self.store.set_task_state(task_id, state, reason)
        self._notify()

    async def _fail_task(self, task_id: str, reason: str) -> None:
        await self.abort_task(task_id, reason, state="failed")

    def _outputs_dir(self, task_id: str) -> Path:
        return self.data_dir / "outputs" / task_id

    # provider API

    def join(self, offer: ProviderOffer) -> npb.JoinReply:
        check_id("provider id", offer.provider_id)
        self.store.upsert_provider(offer.provider_id, offer.to_json())
        self._offers[offer.provider_id] = offer
        log.info("provider %s joined: envs %s, capacity %d", offer.provider_id, offer.envs, offer.capacity)
        return npb.JoinReply(lease_ms=self.config.lease_ms, heartbeat_ms=self.config.heartbeat_ms)

    def _offer(self, provider_id: str) -> ProviderOffer:
        offer = self._offers.get(provider_id)
        if offer is None:
            raise NodeError(Status.FAILED_PRECONDITION, f"provider {provider_id!r} has not joined")
        return offer

    async def request_work(self, provider_id: str, slots: int, wait_ms: int) -> list[npb.Assignment]:
        """Up to `slots` assignments for the provider, waiting up to `wait_ms` for work to appear."""
        offer = self._offer(provider_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_ms, 30_000) / 1000
        while True:
            assignments = await self._assign(offer, max(1, min(slots, 64)))
            remaining = deadline - loop.time()
            if assignments or remaining <= 0:
                return assignments
            await self._wait_for_change(remaining)

    async def _assign(self, offer: ProviderOffer, slots: int) -> list[npb.Assignment]:
        assignments: list[npb.Assignment] = []
        for active in list(self._active.values()):
            if offer.provider_id in active.refused_by:
                continue
            if self.verification.excluded(offer.provider_id, active.row.task_id):
                continue
            if not self.market.accepts(offer, active.row.env_id, active.row.params):
                continue
            while len(assignments) < slots:
                assignment = await self._next_subtask(active, offer.provider_id)
                if assignment is None:
                    break
                assignments.append(assignment)
            if len(assignments) >= slots:
                break
        return assignments

    async def _next_subtask(self, active: ActiveTask, provider_id: str) -> npb.Assignment | None:
        task_id = active.row.task_id
        if self._active.get(task_id) is not active:
            return None
        subtask_id = f"{task_id}-{uuid.uuid4().hex[:10]}"
        self.store.add_subtask(subtask_id, task_id, provider_id)
        opaque_node_id = hashlib.sha256(provider_id.encode()).hexdigest()[:16]
        try:
            subtask = await active.client.next_subtask(task_id, subtask_id, opaque_node_id)
        except GRPCError as exc:
            self.store.forget_subtask(subtask_id)
            log.warning("task %s: NextSubtask failed: %s", task_id, exc.message)
            return None
        if subtask is None or self._active.get(task_id) is not active:
            self.store.forget_subtask(subtask_id)
            await self._maybe_finish(active)
            return None
        resources: list[dict[str, Any]] = []
        for name in subtask.resources:
            path = active.task_dir.subtask_inputs / check_id("resource name", name)
            digest = self.resources.register(path)
            resources.append({"name": name, "sha256": digest, "size": path.stat().st_size})
        deadline_ms = now_ms() + self.config.lease_ms
        params_json = json.dumps(subtask.params)
        self.store.assign_subtask(subtask_id, params_json, resources, deadline_ms)
        self.verification.assigned(active, subtask_id, provider_id, params_json, resources)
        SUBTASKS.labels("assigned").inc()
        return npb.Assignment(
            task_id=task_id,
            subtask_id=subtask_id,
            app_id=active.row.app_id,
            app_name=active.row.app,
            env_id=active.row.env_id,
            prerequisites_json=json.dumps(active.row.prerequisites),
            subtask_params_json=params_json,
            resources=[npb.Resource(**resource) for resource in resources],
            app_module=active.module,
            deadline_ms=deadline_ms,
            max_result_bytes=self.config.max_result_bytes,
        )

    def heartbeat(self, provider_id: str, subtask_ids: list[str]) -> npb.HeartbeatReply:
        self._offer(provider_id)
        deadline_ms = now_ms() + self.config.lease_ms
        cancelled = self.store.renew_leases(provider_id, subtask_ids, deadline_ms)
        return npb.HeartbeatReply(lease_deadline_ms=deadline_ms, cancelled_subtask_ids=cancelled)

    def resource_path(self, digest: str) -> Path:
        path = self.resources.path(digest)
        if path is None or not path.is_file():
            raise NodeError(Status.NOT_FOUND, f"no resource with sha256 {digest}")
        return path

    async def submit_result(self, header: npb.ResultHeader, data: AsyncIterator[bytes]) -> npb.SubmitReply:
        """Receive a result file (size and sha256 checked on arrival), verify it with the app, answer."""
        active, subtask_id = self._owned_subtask(header.provider_id, header.subtask_id)
        try:
            name = check_id("result file name", header.file_name)
        except ValueError as exc:
            return await self._refuse_result(active, subtask_id, str(exc))
        limit = min(header.size, self.config.max_result_bytes)
        if header.size > self.config.max_result_bytes:
            return await self._refuse_result(
                active,
                subtask_id,
                f"result of {header.size} bytes exceeds the {self.config.max_result_bytes}-byte limit",
            )
        target_dir = active.task_dir.subtask_outputs(subtask_id)
        target_dir.mkdir(parents=True, exist_ok=True)
        partial = target_dir.parent / f".{subtask_id}.partial"
        digest, received = hashlib.sha256(), 0
        with open(partial, "wb") as handle:
            async for chunk in data:
                received += len(chunk)
                if received > limit:
                    break
                digest.update(chunk)
                handle.write(chunk)
        if received != header.size or digest.hexdigest() != header.sha256:
            partial.unlink(missing_ok=True)
            problem = (
                f"result size {received} differs from the announced {header.size}"
                if received != header.size
                else "result sha256 does not match the announced digest"
            )
            return await self._refuse_result(active, subtask_id, problem)
        partial.replace(target_dir / name)
        BYTES.labels("results").inc(received)
        usage = {"wall_ms": header.usage.wall_ms, "cpu_ns": header.usage.cpu_ns, "fuel": header.usage.fuel}
        self.store.deliver_subtask(subtask_id, name, header.sha256, usage)
        # Delivered, the result is the requestor's: it is verified even if the provider hangs up now
        # (else the subtask would stay `delivered` forever and its task could never finish).
        verification = asyncio.ensure_future(self._verify(active, subtask_id))
        self._verifying.add(verification)
        verification.add_done_callback(self._verifying.discard)
        verdict, reason = await asyncio.shield(verification)
        return npb.SubmitReply(verdict=verdict, reason=reason)

    def _owned_subtask(self, provider_id: str, subtask_id: str) -> tuple[ActiveTask, str]:
        subtask = self.store.subtask(subtask_id)
        if subtask is None or subtask.provider_id != provider_id:
            raise NodeError(
                Status.NOT_FOUND, f"subtask {subtask_id!r} is not assigned to provider {provider_id!r}"
            )
        if subtask.state != "assigned":
            raise NodeError(
                Status.FAILED_PRECONDITION, f"subtask {subtask_id!r} is {subtask.state}, not assigned"
            )
        active = self._active.get(subtask.task_id)
        if active is None:
            raise NodeError(Status.FAILED_PRECONDITION, f"task {subtask.task_id!r} is not active")
        return active, subtask_id

    async def _refuse_result(self, active: ActiveTask, subtask_id: str, reason: str) -> npb.SubmitReply:
        log.warning("subtask %s: result refused: %s", subtask_id, reason)
        await self._release(active, subtask_id, "failed", reason)
        return npb.SubmitReply(verdict="rejected", reason=reason)

    async def _verify(self, active: ActiveTask, subtask_id: str) -> tuple[str, str]:
        task_id = active.row.task_id
        try:
            verdict, reason = await active.client.verify(task_id, subtask_id)
        except GRPCError as exc:
            verdict, reason = VerifyResult.INCONCLUSIVE, f"Verify failed: {exc.message}"
        # The rest of the ladder: re-execution of a sample, trust, journal (verification.py).
        verdict, reason = await self.verification.ladder(active, subtask_id, verdict, reason, self._offers)
        VERIFICATIONS.labels(verdict.name.lower()).inc()
        if verdict is VerifyResult.SUCCESS:
            self.store.set_subtask_state(subtask_id, "accepted")
            SUBTASKS.labels("accepted").inc()
            subtask = self.store.subtask(subtask_id)
            FUEL.inc(subtask.fuel if subtask else 0)
            log.info("subtask %s accepted", subtask_id)
            await self._maybe_finish(active)
            self._notify()
            return "accepted", ""
        if verdict is VerifyResult.FAILURE:
            self.store.set_subtask_state(subtask_id, "rejected", reason)
            SUBTASKS.labels("rejected").inc()
            log.warning("subtask %s rejected by the app: %s", subtask_id, reason)
            # A provider caught with a wrong result gets no more of this task's subtasks: else a fast
            # cheater burns the task's failure budget in a blink and the task fails.
            rejected = self.store.subtask(subtask_id)
            if rejected is not None:
                active.refused_by.add(rejected.provider_id)
            await self._count_failure(active, f"subtask {subtask_id} rejected: {reason}")
            await self._maybe_finish(active)
        else:
            await self._release(active, subtask_id, "failed", f"verification {verdict.name}: {reason}")
        self._notify()
        return "rejected", reason

    async def _release(self, active: ActiveTask, subtask_id: str, state: str, reason: str) -> None:
        """Take a subtask back from its provider: the app returns its work to pending."""
        with contextlib.suppress(GRPCError):
            await active.client.abort_subtask(active.row.task_id, subtask_id)
        self.store.set_subtask_state(subtask_id, state, reason)
        SUBTASKS.labels(state).inc()
        await self._count_failure(active, f"subtask {subtask_id} {state}: {reason}")
        # The work given back may not be needed any more (the answer is already certain): then the
        # task is done now, not when some provider next asks for work (perhaps never).
        await self._maybe_finish(active)
        self._notify()

    async def _count_failure(self, active: ActiveTask, message: str) -> None:
        counts = self.store.count_by_state(active.row.task_id)
        failures = sum(counts.get(state, 0) for state in ("rejected", "failed", "expired"))
        if failures > self.config.max_failures:
            log.error("task %s failed: %d failures, last: %s", active.row.task_id, failures, message)
            reason = f"too many failures ({failures}); last: {message}"
            await self.abort_task(active.row.task_id, reason, state="failed")

    async def report_failure(self, provider_id: str, subtask_id: str, reason: str) -> None:
        active, subtask_id = self._owned_subtask(provider_id, subtask_id)
        log.warning("provider %s failed subtask %s: %s", provider_id, subtask_id, reason)
        if reason.startswith("refused:"):
            active.refused_by.add(provider_id)
        await self._release(active, subtask_id, "failed", f"provider {provider_id}: {reason}")

    async def leave(self, provider_id: str) -> None:
        """A provider leaves: its subtasks go back to pending at once, not at lease expiry."""
        for subtask in self.store.subtasks(states=("assigned",)):
            active = self._active.get(subtask.task_id)
            if subtask.provider_id == provider_id and active is not None:
                await self._release(active, subtask.subtask_id, "expired", f"provider {provider_id} left")
        self._offers.pop(provider_id, None)

    # completion and leases

    async def _maybe_finish(self, active: ActiveTask) -> None:
        task_id = active.row.task_id
        if self._active.get(task_id) is not active:
            return
        if self.store.subtasks(task_id=task_id, states=LIVE_SUBTASK_STATES):
            return
        if await active.client.has_pending_subtasks(task_id):
            return
        outputs = self._outputs_dir(task_id)
        shutil.copytree(active.task_dir.task_outputs, outputs, dirs_exist_ok=True)
        self.store.set_task_state(task_id, "finished")
        self._active.pop(task_id, None)
        log.info("task %s finished; outputs in %s", task_id, outputs)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            try:
                await self.expire_leases()
            except Exception:
                log.exception("lease reaper failed")

    async def expire_leases(self) -> None:
        for subtask in self.store.expired(now_ms()):
            active = self._active.get(subtask.task_id)
            if active is not None:
                log.warning(
                    "subtask %s: lease of provider %s expired", subtask.subtask_id, subtask.provider_id
                )
                await self._release(active, subtask.subtask_id, "expired", "lease expired")

    def _notify(self) -> None:
        """Wake everyone waiting for a change (a fresh event serves the next round of waiters)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_for_change(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def wait_for_task(self, task_id: str, poll_s: float = 0.05) -> npb.TaskStatus:
        """Wait until the task is no longer active; return its final status."""
        while True:
            status = self.task_status(task_id)
            if status.state != "active":
                return status
            await self._wait_for_change(poll_s * 20)
