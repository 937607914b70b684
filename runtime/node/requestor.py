"""The requestor: runs tasks through their apps, hands subtasks to providers under leases, verifies results.

Every state change is written to the SQLite store before the caller is answered, so a requestor killed
at any point and restarted on the same data dir resumes: live leases are kept (providers may still
deliver), interrupted requests are reconciled with the app, delivered results are verified again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from grpclib.exceptions import GRPCError, StreamTerminatedError

from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import Subtask, VerifyResult
from apps.sdk.sandboxed_files import UnsafePath, copy_file, copy_tree
from apps.sdk.workdir import RequestorTaskDir, RequestorWorkDir, check_id
from protos import node_pb2 as npb
from runtime.appmanager import AppManager, Redundancy
from runtime.node.app_servers import AppServers, ResolvedApp, resolve_app
from runtime.node.errors import (
    AppRefused,
    AppUnavailable,
    BadRequest,
    Duplicate,
    NotFound,
    WrongState,
    is_refusal,
)
from runtime.node.market import Balanced, MarketStrategy, ProviderOffer
from runtime.node.metrics import BYTES, FUEL, SUBTASKS, VERIFICATIONS
from runtime.node.quorum import Decision, Outcome, decide
from runtime.node.resources import ResourceRegistry
from runtime.node.scheduling import (
    LEASE_EXPIRED,
    AbortOnApp,
    Action,
    AppFailed,
    AskApp,
    Assign,
    Budgets,
    CheckFinished,
    Copy,
    CopyJudged,
    DropProvider,
    Event,
    FailTask,
    FinishTask,
    ForgetRequest,
    LeasesRenewed,
    NoSubtask,
    PendingAnswered,
    ProviderAsked,
    ProviderJoined,
    ProviderLeft,
    RefereeWanted,
    RequestBroken,
    ResultDelivered,
    RoundAbandoned,
    SchedulingCore,
    SetState,
    SubtaskOffered,
    TakenBack,
    TaskClosed,
    TaskOpened,
    TaskPlan,
    TaskSpec,
    Tick,
    Verdict,
    VerificationDone,
    WantReplica,
)
from runtime.node.states import (
    LIVE_SUBTASK_STATES,
    IllegalTransition,
    SubtaskState,
    TaskState,
)
from runtime.node.store import Store, SubtaskRow, TaskRow, now_ms
from runtime.node.task_inputs import InputStaging
from runtime.node.verification import Verification, VerificationConfig
from runtime.node.verify_batches import VerifyBatches

log = logging.getLogger(__name__)


@dataclass
class RequestorConfig:
    lease_ms: int = 30_000
    heartbeat_ms: int = 5_000
    max_result_bytes: int = 64 * 1024 * 1024
    max_input_bytes: int = 1024 * 1024 * 1024
    """The most bytes of input files one task may have (each file, and all together)."""
    max_failures: int = 20
    """Failed, rejected or expired subtasks a task survives."""
    max_provider_failures: int = 3
    """Failures one provider may cause in a task before it gets no more of its subtasks (so one broken
    provider cannot burn the task's whole budget)."""
    max_app_errors: int = 5
    """NextSubtask calls in a row a task's app may fail (an error status, or resources it named but did not
    write) before the task fails with the app's own message."""
    reap_interval_s: float = 0.5
    stranded_s: float = 60.0
    """How long a task may go with no live subtask while every joined provider was dropped from it or refused
    its app (and at least one was) before it fails with that reason instead of waiting forever."""
    queue_compute_ms: int = Budgets.queue_compute_ms
    """Providers queue a task's subtasks beyond their capacity only while its latest result computed in at
    most this many ms (scheduling.Budgets)."""
    verification: VerificationConfig = field(default_factory=VerificationConfig)

    def budgets(self) -> Budgets:
        """The scheduling core's limits (scheduling.py)."""
        return Budgets(
            lease_ms=self.lease_ms,
            max_failures=self.max_failures,
            max_provider_failures=self.max_provider_failures,
            max_app_errors=self.max_app_errors,
            stranded_ms=round(self.stranded_s * 1000),
            queue_compute_ms=self.queue_compute_ms,
        )


@dataclass
class ActiveTask:
    """A task's I/O side: its app, client and dir (its scheduling state is `plan`, the core's)."""

    row: TaskRow
    app: ResolvedApp
    client: RequestorAppClient
    task_dir: RequestorTaskDir
    plan: TaskPlan
    module: npb.Resource | None = None
    """The app's wasm module as providers fetch it (hashed once, at activation)."""

    @property
    def refused_by(self) -> set[str]:
        """Providers that get no more of its subtasks (the core's set: verification adds forgers)."""
        return self.plan.refused_by

    @property
    def redundancy(self) -> Redundancy | None:
        return self.app.descriptor.redundancy


HELD = ("held", "awaiting the other results of its quorum")
"""The reply to a result kept until its quorum is complete."""
STOP_VERIFY_GRACE_S = 1.0
"""How long stop() lets running verifications finish before it cancels them (within a 2 s stop)."""


def _same_call(action: Action, ask: AskApp) -> bool:
    """Whether `action` is an AskApp that goes in the same NextSubtasks call as `ask`."""
    return isinstance(action, AskApp) and (action.round_id, action.task_id) == (ask.round_id, ask.task_id)


def _new_subtask_id(task_id: str) -> str:
    """A fresh subtask id of the task (replicas get ids of the same shape as primaries)."""
    return f"{task_id}-{uuid.uuid4().hex[:10]}"


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
        self.inputs = InputStaging(data_dir / "inputs", self.config.max_input_bytes)
        self._apps = AppServers(data_dir / "app-work")
        self.app_manager = app_manager or AppManager(data_dir)
        self._active: dict[str, ActiveTask] = {}
        self.verification = Verification(
            data_dir, self.store, self._active.get, self._fail_task, self.config.verification
        )
        self.core = SchedulingCore(self.config.budgets(), self.market, _new_subtask_id)
        """The scheduling decisions (scheduling.py); this class runs them against the store and apps."""
        self._round_ids = itertools.count()
        self._changed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self._verifying: set[asyncio.Future[tuple[str, str]]] = set()
        self._verify_batches = VerifyBatches()
        """Deliveries of a task arriving while its app verifies go to the app together."""
        self._settling: set[str] = set()
        self._receiving: set[str] = set()
        """Subtasks whose result is arriving (one upload per subtask at a time)."""

    # lifecycle

    async def start(self) -> None:
        """Resume every active task from the store, then start expiring leases."""
        self._resume_leases()
        for row in self.store.tasks(TaskState.ACTIVE):
            try:
                await self._activate(row)
                await self._reconcile(row.task_id)
            except (GRPCError, AppUnavailable, LookupError, OSError) as exc:
                log.error("task %s cannot resume: %s", row.task_id, exc)
                self._active.pop(row.task_id, None)
                self.core.handle(TaskClosed(row.task_id))
                self.store.set_task_state(row.task_id, TaskState.FAILED, f"cannot resume: {exc}")
        self._reaper = asyncio.create_task(self._reap_forever())

    def _resume_leases(self) -> None:
        """After a restart, live leases get a full term again and their providers stay known.

        Nobody could heartbeat while this requestor was down, so a lease that ran out meanwhile says
        nothing about its provider; and that provider's heartbeats must renew it without a new Join.
        """
        deadline_ms = now_ms() + self.config.lease_ms
        with self.store.transaction():
            for subtask in self.store.subtasks(states=(SubtaskState.ASSIGNED,)):
                self.store.renew_leases(subtask.provider_id, [subtask.subtask_id], deadline_ms)
                offer = self.store.provider_offer(subtask.provider_id)
                if offer is not None:
                    self.core.handle(ProviderJoined(ProviderOffer(**offer)))

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        # Verifications still running end before the app servers go: left running, they would fail against
        # a closed app and mark good results failed. Each gets a moment to finish, so that the app's plan and
        # the store agree on its verdict; one cancelled past that stays delivered, and start() verifies it
        # again.
        if self._verifying:
            _, late = await asyncio.wait(list(self._verifying), timeout=STOP_VERIFY_GRACE_S)
            for verification in late:
                verification.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._verify_batches.close()
        await self._apps.close()
        await self.verification.close()
        self.store.close()

    async def _activate(self, row: TaskRow) -> ActiveTask:
        app = resolve_app(self.app_manager, row.app, row.env_id)
        client = await self._apps.client(app)
        task_dir = RequestorWorkDir(self._apps.work_dir(app)).task_dir(row.task_id)
        live = self.store.subtasks(task_id=row.task_id, states=LIVE_SUBTASK_STATES)
        redundancy = app.descriptor.redundancy
        spec = TaskSpec(
            row.task_id,
            row.env_id,
            row.params,
            row.min_memory_mib,
            quorum=redundancy.quorum if redundancy is not None else 1,
        )
        copies = tuple(
            Copy(s.subtask_id, s.task_id, s.provider_id, s.state, s.replica_of, s.deadline_ms) for s in live
        )
        failures = self.store.counted_failures(row.task_id)
        # Verify's failures and max_provider_failures both drop a provider from the task for good.
        dropped = frozenset(self.verification.trust.dropped_from(row.task_id))
        self.core.handle(TaskOpened(spec, copies, failures, dropped))
        active = ActiveTask(row, app, client, task_dir, self.core.tasks[row.task_id])
        if app.module is not None:
            digest, size = self.resources.register(app.module.parent, app.module.name)
            active.module = npb.Resource(name=app.module.name, sha256=digest, size=size)
        for subtask in self.store.subtasks(task_id=row.task_id, states=(SubtaskState.ASSIGNED,)):
            for resource in subtask.resources:
                self.resources.restore(task_dir.subtask_inputs, resource["name"], resource["sha256"])
        self._active[row.task_id] = active
        return active

    async def _reconcile(self, task_id: str) -> None:
        """After a restart: abandon requests the app may or may not have answered; re-verify deliveries."""
        active = self._active[task_id]
        for subtask in self.store.subtasks(task_id=task_id, states=(SubtaskState.REQUESTED,)):
            await self._apply(RequestBroken(None, subtask.subtask_id, "requestor restarted mid-request"))
        for subtask in self.store.subtasks(task_id=task_id, states=(SubtaskState.DELIVERED,)):
            current = self.store.subtask(subtask.subtask_id)
            if (
                current is None or current.state is not SubtaskState.DELIVERED
            ):  # settled by its quorum meanwhile
                continue
            await self._judge(active, current, self.store.app_verdict(current.subtask_id))
        await self._run([CheckFinished(task_id)])

    # control API

    async def receive_input(self, name: str, size: int, sha256: str, data: AsyncIterator[bytes]) -> str:
        """Store one input file for a task about to be submitted; returns its input id."""
        return (await self.inputs.receive(name, size, sha256, data)).input_id

    async def submit_task(
        self,
        app_name: str,
        env: str | None,
        params: dict[str, Any],
        max_subtasks: int,
        input_ids: Sequence[str] = (),
    ) -> str:
        """Create a task through its app; returns the task id. Refusals keep the app's message.

        Golem's task-dir contract: the task's four folders exist, and the inputs (received earlier, named by
        `input_ids`) are in `task_inputs/`, before the app's CreateTask is called.
        """
        try:
            app = resolve_app(self.app_manager, app_name, env or None)
        except LookupError as exc:
            raise NotFound(str(exc.args[0])) from exc
        try:
            params = app.descriptor.check_params(params)
        except ValueError as exc:
            raise BadRequest(f"app {app_name}: {exc}") from exc
        inputs = self.inputs.check(input_ids)
        task_id = f"{app_name}-{uuid.uuid4().hex[:12]}"
        row = TaskRow(
            task_id, app_name, app.app_id, app.env_id, params, max_subtasks, TaskState.ACTIVE, "", {}
        )
        self.store.add_task(row)
        task_dir = RequestorWorkDir(self._apps.work_dir(app)).task_dir(task_id)
        task_dir.prepare()
        self.inputs.place(inputs, task_dir.task_inputs)
        try:
            await self._apps.hand_over(app, task_dir.root)
            client = await self._apps.client(app)
            created = await client.create_task(task_id, max_subtasks, params)
        except AppUnavailable as exc:
            self.store.set_task_state(task_id, TaskState.FAILED, exc.message)
            raise
        except GRPCError as exc:
            self.store.set_task_state(task_id, TaskState.FAILED, exc.message or "")
            message = f"app {app_name} refused the task: {exc.message}"
            raise AppRefused(message, exc.status.name) from exc
        self.store.set_task_prerequisites(task_id, app.env_id, created.prerequisites)
        self.store.set_task_min_memory(task_id, int(created.min_memory_mib))
        await self._activate(self.store.task(task_id) or row)
        self._notify()
        log.info("task %s created (%s on %s)", task_id, app_name, app.env_id)
        return task_id

    def task_status(self, task_id: str) -> npb.TaskStatus:
        row = self.store.task(task_id)
        if row is None:
            raise NotFound(f"unknown task {task_id!r}")
        offers = {**self.core.offers}
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
            result_info=self.store.result_info(task_id),
        )

    async def abort_task(
        self, task_id: str, reason: str = "aborted by the requestor", state: TaskState = TaskState.ABORTED
    ) -> None:
        """Stop a task: the app aborts it; live subtasks are cancelled (providers learn it by heartbeat)."""
        row = self.store.task(task_id)
        if row is None:
            raise NotFound(f"unknown task {task_id!r}")
        active = self._active.pop(task_id, None)
        self.core.handle(TaskClosed(task_id))
        if active is not None:
            with contextlib.suppress(GRPCError):
                await active.client.abort_task(task_id)
        with self.store.transaction():
            for subtask in self.store.subtasks(task_id=task_id, states=LIVE_SUBTASK_STATES):
                self.store.set_subtask_state(subtask.subtask_id, SubtaskState.ABORTED, reason)
            current = self.store.task(task_id)  # `row` may be stale: the app was called meanwhile
            if current is not None and current.state is TaskState.ACTIVE:
                self.store.set_task_state(task_id, state, reason)
        self._notify()

    async def _fail_task(self, task_id: str, reason: str) -> None:
        await self.abort_task(task_id, reason, state=TaskState.FAILED)

    def _outputs_dir(self, task_id: str) -> Path:
        return self.data_dir / "outputs" / task_id

    def task_dir(self, task_id: str) -> RequestorTaskDir | None:
        """The task's dir in its app's work dir, finished or not (None: unknown task, or app gone)."""
        active = self._active.get(task_id)
        if active is not None:
            return active.task_dir
        row = self.store.task(task_id)
        if row is None:
            return None
        try:
            app = resolve_app(self.app_manager, row.app, row.env_id)
        except LookupError:
            return None
        return RequestorWorkDir(self._apps.work_dir(app)).task_dir(task_id)

    # provider API

    def join(self, offer: ProviderOffer) -> npb.JoinReply:
        check_id("provider id", offer.provider_id)
        self.store.upsert_provider(offer.provider_id, offer.to_json())
        self.core.handle(ProviderJoined(offer))
        log.info("provider %s joined: envs %s, capacity %d", offer.provider_id, offer.envs, offer.capacity)
        return npb.JoinReply(lease_ms=self.config.lease_ms, heartbeat_ms=self.config.heartbeat_ms)

    def _offer(self, provider_id: str) -> ProviderOffer:
        offer = self.core.offers.get(provider_id)
        if offer is None:
            raise WrongState(f"provider {provider_id!r} has not joined")
        return offer

    async def request_work(self, provider_id: str, slots: int, wait_ms: int) -> list[npb.Assignment]:
        """Up to `slots` assignments for the provider, waiting up to `wait_ms` for work to appear."""
        self._offer(provider_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_ms, 30_000) / 1000
        while True:
            assignments = await self._assign(provider_id, slots)
            remaining = deadline - loop.time()
            if assignments or remaining <= 0:
                return assignments
            await self._wait_for_change(remaining)

    async def _assign(self, provider_id: str, slots: int) -> list[npb.Assignment]:
        """One round of the core: the assignments it makes (never past the offer's capacity: each copy is
        counted in the core before the next await, so concurrent RequestWork calls cannot overshoot)."""
        round_id = next(self._round_ids)
        excluded = frozenset(t for t in self._active if self.verification.excluded(provider_id, t))
        assignments: list[npb.Assignment] = []
        try:
            asked = ProviderAsked(round_id, provider_id, slots, now_ms(), excluded)
            await self._run(self.core.handle(asked), assignments)
        finally:
            self.core.handle(RoundAbandoned(round_id))
        return assignments

    async def _ask_app(self, asks: list[AskApp]) -> list[Action]:
        """Ask the app for a subtask under each request's id, a round's requests of one task in one call
        (NextSubtasks); the core's answers to what came back, in order. A failed call answers each of its
        requests as one failed NextSubtask did."""
        round_id, task_id = asks[0].round_id, asks[0].task_id
        active = self._active.get(task_id)
        if active is None:
            return self._answer(NoSubtask(round_id, ask.subtask_id) for ask in asks)
        with self.store.transaction():
            for ask in asks:
                self.store.add_subtask(ask.subtask_id, task_id, ask.provider_id)
        calls = [(ask.subtask_id, hashlib.sha256(ask.provider_id.encode()).hexdigest()[:16]) for ask in asks]
        try:
            subtasks = await active.client.next_subtasks(task_id, calls)
        except GRPCError as exc:
            message = f"NextSubtask failed: {exc.status.name} {exc.message}"
            log.warning("task %s: %s", task_id, message)
            if len(asks) > 1:  # the asks before the failing one took work on the app: it goes back
                await self._run([AbortOnApp(task_id, ask.subtask_id) for ask in asks])
            return self._answer(AppFailed(round_id, ask.subtask_id, message) for ask in asks)
        except (OSError, StreamTerminatedError, asyncio.CancelledError) as exc:
            if self._active.get(task_id) is not active:  # the task ended: no request left to reconcile
                for ask in asks:
                    self.store.forget_subtask(ask.subtask_id)
            elif not isinstance(exc, asyncio.CancelledError):  # cancelled: a restart reconciles it
                reason = f"NextSubtask broke off: {exc}"
                return self._answer(RequestBroken(round_id, ask.subtask_id, reason) for ask in asks)
            raise
        return self._answer(
            self._offer_of(active, round_id, ask.subtask_id, subtask)
            for ask, subtask in zip(asks, subtasks, strict=True)
        )

    def _answer(self, events: Iterable[Event]) -> list[Action]:
        """Feed the core the answers of one app call, in order; the actions they call for, in order."""
        return [action for event in events for action in self.core.handle(event)]

    def _offer_of(self, active: ActiveTask, round_id: int, subtask_id: str, subtask: Subtask | None) -> Event:
        """The core's event for what the app handed out under `subtask_id` (its resources checked)."""
        task_id = active.row.task_id
        if subtask is None or self._active.get(task_id) is not active:
            return NoSubtask(round_id, subtask_id)
        try:
            resources = self._subtask_resources(active, subtask.resources)
        except (ValueError, OSError) as exc:
            log.warning("task %s: NextSubtask named a bad resource: %s", task_id, exc)
            return AppFailed(round_id, subtask_id, str(exc), bad_resource=True)
        payload = (json.dumps(subtask.params), resources)
        return SubtaskOffered(round_id, subtask_id, now_ms(), payload)

    def _subtask_resources(self, active: ActiveTask, names: list[str]) -> list[dict[str, Any]]:
        """The files of `subtask_inputs/` a NextSubtask named, registered for providers to fetch.

        UnsafePath (a ValueError) for a link or a special file: the guest may write that folder, and a link
        there must never make a host file a resource; FileNotFoundError for a name it did not write.
        """
        resources: list[dict[str, Any]] = []
        for name in names:
            digest, size = self.resources.register(
                active.task_dir.subtask_inputs, check_id("resource name", name)
            )
            resources.append({"name": name, "sha256": digest, "size": size})
        return resources

    def _assign_copy(self, assign: Assign) -> npb.Assignment:
        """Write a copy the core assigned (a primary the app offered, or a wanted replica) and describe it."""
        active = self._active[assign.task_id]
        if assign.payload is None:
            self.store.take_replica(assign.subtask_id, assign.provider_id, assign.deadline_ms)
            replica = self.store.subtask(assign.subtask_id)
            assert replica is not None
            params_json, resources = replica.params_json, replica.resources
        else:
            params_json, resources = assign.payload
            self.store.assign_subtask(assign.subtask_id, params_json, resources, assign.deadline_ms)
        return self._assignment(
            active, assign.subtask_id, assign.provider_id, params_json, resources, assign.deadline_ms
        )

    def _assignment(
        self,
        active: ActiveTask,
        subtask_id: str,
        provider_id: str,
        params_json: str,
        resources: list[dict[str, Any]],
        deadline_ms: int,
    ) -> npb.Assignment:
        self.verification.assigned(active, subtask_id, provider_id, params_json, resources)
        SUBTASKS.labels(SubtaskState.ASSIGNED).inc()
        return npb.Assignment(
            task_id=active.row.task_id,
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
        held = tuple(subtask_id for subtask_id in subtask_ids if subtask_id not in cancelled)
        self.core.handle(LeasesRenewed(provider_id, held, deadline_ms))
        return npb.HeartbeatReply(lease_deadline_ms=deadline_ms, cancelled_subtask_ids=cancelled)

    def open_resource(self, digest: str) -> BinaryIO:
        """A registered resource, open for reading (opened without following links: see resources.py)."""
        try:
            handle = self.resources.open(digest)
        except UnsafePath as exc:
            raise WrongState(f"resource with sha256 {digest} refused: {exc}") from exc
        if handle is None:
            raise NotFound(f"no resource with sha256 {digest}")
        return handle

    async def submit_result(self, header: npb.ResultHeader, data: AsyncIterator[bytes]) -> npb.SubmitReply:
        """Receive a result file (`receive_result`), verify it with the app, answer."""
        verdict, reason = await asyncio.shield(await self.receive_result(header, data))
        return npb.SubmitReply(verdict=verdict, reason=reason)

    async def receive_result(
        self, header: npb.ResultHeader, data: AsyncIterator[bytes]
    ) -> asyncio.Future[tuple[str, str]]:
        """Receive a result file (size and sha256 checked on arrival); once it is in, the future of its
        (verdict, reason), which the node settles whether or not anyone awaits it (a result refused on
        arrival has it at once). `data` may be left partly unread: a result refused for its header is not
        read at all, and reading stops at the first chunk past the announced size.

        One upload per subtask at a time: a second one while the first is arriving is refused
        ALREADY_EXISTS (it could otherwise mix its bytes with the first's, or have them accepted under the
        first's digest).
        """
        active, subtask_id = self._owned_subtask(header.provider_id, header.subtask_id)
        if subtask_id in self._receiving:
            raise Duplicate(
                f"a result for subtask {subtask_id!r} is already arriving; a second upload is refused",
            )
        self._receiving.add(subtask_id)
        try:
            return await self._receive_result(active, subtask_id, header, data)
        finally:
            self._receiving.discard(subtask_id)

    async def _receive_result(
        self, active: ActiveTask, subtask_id: str, header: npb.ResultHeader, data: AsyncIterator[bytes]
    ) -> asyncio.Future[tuple[str, str]]:
        """Content-addressed end to end: the bytes go to a temporary file of this upload alone and are
        hashed as they arrive; only if they match the announced size and sha256 is that very file renamed
        into place and the digest of its bytes recorded. So the file the app verifies, the re-execution
        compares and the task's outputs come from is the file whose bytes were hashed."""
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
        row = self.store.subtask(subtask_id)
        assert row is not None
        target_dir = self._result_dir(active, row)
        target_dir.mkdir(parents=True, exist_ok=True)
        fd, partial_name = tempfile.mkstemp(
            dir=target_dir.parent, prefix=f".{subtask_id}.", suffix=".partial"
        )
        partial = Path(partial_name)
        try:
            digest, received = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as handle:
                async for chunk in data:
                    received += len(chunk)
                    if received > limit:
                        break
                    digest.update(chunk)
                    handle.write(chunk)
            sha256 = digest.hexdigest()
            if received != header.size or sha256 != header.sha256:
                problem = (
                    f"result size {received} differs from the announced {header.size}"
                    if received != header.size
                    else "result sha256 does not match the announced digest"
                )
                return await self._refuse_result(active, subtask_id, problem)
            current = self.store.subtask(subtask_id)
            if (
                current is None or current.state is not SubtaskState.ASSIGNED
            ):  # taken back while the bytes arrived
                state = current.state if current is not None else "gone"
                raise WrongState(f"subtask {subtask_id!r} is {state}, not assigned")
            partial.replace(target_dir / name)
        finally:
            partial.unlink(missing_ok=True)
        if row.replica_of is None:  # in the app's subtask_outputs/: the app must be able to read it
            await self._apps.hand_over(active.app, target_dir)
        BYTES.labels("results").inc(received)
        usage = {"wall_ms": header.usage.wall_ms, "cpu_ns": header.usage.cpu_ns, "fuel": header.usage.fuel}
        self.store.deliver_subtask(subtask_id, name, sha256, usage)
        self.core.handle(ResultDelivered(subtask_id, header.usage.wall_ms))
        # Delivered, the result is the requestor's: it is verified even if the provider hangs up now
        # (else the subtask would stay `delivered` forever and its task could never finish).
        verification = asyncio.ensure_future(self._judge(active, row))
        self._verifying.add(verification)
        verification.add_done_callback(self._verifying.discard)
        return verification

    def _result_dir(self, active: ActiveTask, row: SubtaskRow) -> Path:
        """Where a delivered result lies: the app's subtask_outputs, or the node's own dir for replicas."""
        if row.replica_of is None:
            return active.task_dir.subtask_outputs(row.subtask_id)
        return self.data_dir / "replicas" / row.task_id / row.subtask_id

    def _result_path(self, active: ActiveTask, row: SubtaskRow) -> Path:
        return self._result_dir(active, row) / (row.result_name or "")

    async def _judge(
        self, active: ActiveTask, row: SubtaskRow, judged: tuple[str, str] | None = None
    ) -> tuple[str, str]:
        """Verify a delivered result: at once, or as one of a quorum once all its copies are in. `judged`:
        the app's verdict kept before a restart (`_verify`; a quorum's results are verified as a quorum)."""
        if active.redundancy is None:
            return await self._verify(active, row.subtask_id, judged)
        verdicts = await self._settle(active, row.replica_of or row.subtask_id, active.redundancy)
        return verdicts.get(row.subtask_id, HELD)

    async def _settle(
        self, active: ActiveTask, primary_id: str, spec: Redundancy
    ) -> dict[str, tuple[str, str]]:
        """Decide a primary's quorum once its copies are in (quorum.py); the verdict of each copy decided."""
        if primary_id in self._settling:
            return {}  # another delivery of the same quorum is deciding it
        self._settling.add(primary_id)
        try:
            return await self._decide(active, primary_id, spec)
        finally:
            self._settling.discard(primary_id)

    async def _decide(
        self, active: ActiveTask, primary_id: str, spec: Redundancy
    ) -> dict[str, tuple[str, str]]:
        copies = [c for c in self.store.copies(primary_id) if c.state in LIVE_SUBTASK_STATES]
        if not copies or copies[0].subtask_id != primary_id:
            return {}  # decided already
        decision = decide(spec, copies, lambda row: self._result_path(active, row))
        if decision.outcome is Outcome.WAIT:
            return {}
        if decision.outcome is Outcome.REFEREE:
            log.warning("subtask %s: its results disagree; a referee is wanted", primary_id)
            await self._apply(RefereeWanted(primary_id))
            return {}
        by_id = {copy.subtask_id: copy for copy in copies}
        if decision.outcome is Outcome.NO_QUORUM:
            reason = f"no {spec.quorum} of its {len(copies)} results agree"
            for copy in copies[1:]:
                await self._judge_copy(active, copy, SubtaskState.FAILED, "inconclusive", reason)
            await self._apply(TakenBack(primary_id, SubtaskState.FAILED, reason))
            return dict.fromkeys(by_id, ("rejected", reason))
        return await self._agreed(active, primary_id, by_id, decision)

    async def _agreed(
        self, active: ActiveTask, primary_id: str, by_id: dict[str, SubtaskRow], decision: Decision
    ) -> dict[str, tuple[str, str]]:
        """A quorum agreed: its result goes to the app's Verify. Accepted, the outvoted copies are forged;
        rejected, the agreeing copies are rejected and the outvoted ones not blamed (the work is redone)."""
        replicas = [by_id[copy_id] for copy_id in decision.agreeing if copy_id != primary_id]
        if primary_id in decision.agreeing:
            verdict, reason = await self._verify(active, primary_id)
        else:
            verdict, reason = await self._verify_instead(active, primary_id, replicas[0])
        accepted = verdict == "accepted"
        verdicts: dict[str, tuple[str, str]] = {}
        for replica in replicas:
            state = SubtaskState.ACCEPTED if accepted else SubtaskState.REJECTED
            await self._judge_copy(active, replica, state, state, reason)
            verdicts[replica.subtask_id] = (verdict, reason)
        for copy_id in decision.forged:
            copy = by_id[copy_id]
            if accepted:
                outvoted = f"outvoted: its result disagrees with {len(decision.agreeing)} agreeing results"
                await self._judge_copy(active, copy, SubtaskState.REJECTED, "forged", outvoted, forged=True)
                verdicts[copy_id] = ("rejected", outvoted)
            else:
                unsettled = "outvoted by results the app then rejected: not blamed"
                await self._judge_copy(active, copy, SubtaskState.FAILED, "inconclusive", unsettled)
                verdicts[copy_id] = ("rejected", unsettled)
        verdicts.setdefault(primary_id, (verdict, reason))
        return verdicts

    async def _verify_instead(
        self, active: ActiveTask, primary_id: str, winner: SubtaskRow
    ) -> tuple[str, str]:
        """The primary's own result was outvoted: the app verifies the quorum's result under its id."""
        target = active.task_dir.subtask_outputs(primary_id)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        winner_dir = self._result_dir(active, winner)
        copy_file(winner_dir, winner.result_name or "", target / (winner.result_name or ""))
        await self._apps.hand_over(active.app, target)
        try:
            result, reason = await active.client.verify(active.row.task_id, primary_id)
        except GRPCError as exc:
            result, reason = VerifyResult.INCONCLUSIVE, f"Verify failed: {exc.message}"
        if result is VerifyResult.INCONCLUSIVE:
            await self._apply(TakenBack(primary_id, SubtaskState.FAILED, reason))
        return ("accepted" if result is VerifyResult.SUCCESS else "rejected"), reason

    async def _judge_copy(
        self,
        active: ActiveTask,
        copy: SubtaskRow,
        state: SubtaskState,
        verdict: str,
        reason: str,
        *,
        forged: bool = False,
    ) -> None:
        """Settle one copy outside the app's Verify (the app knows only the primary); a forged copy's
        provider gets no more of the task."""
        self._in_play(copy.subtask_id, state)
        await self._apply(CopyJudged(copy.subtask_id, state, reason, refuse=forged))
        output = self._result_path(active, copy)
        self.verification.quorum_verdict(active.row.task_id, copy, output, verdict, reason)

    def _owned_subtask(self, provider_id: str, subtask_id: str) -> tuple[ActiveTask, str]:
        subtask = self.store.subtask(subtask_id)
        if subtask is None or subtask.provider_id != provider_id:
            raise NotFound(f"subtask {subtask_id!r} is not assigned to provider {provider_id!r}")
        if subtask.state is not SubtaskState.ASSIGNED:
            raise WrongState(f"subtask {subtask_id!r} is {subtask.state}, not assigned")
        active = self._active.get(subtask.task_id)
        if active is None:
            raise WrongState(f"task {subtask.task_id!r} is not active")
        return active, subtask_id

    def _in_play(self, subtask_id: str, verdict: SubtaskState) -> None:
        """A verdict on a copy no longer in play (its task ended meanwhile) lost a race: IllegalTransition,
        as the store refuses any write from a final state."""
        if self.core.copy(subtask_id) is None:
            row = self.store.subtask(subtask_id)
            current = None if row is None else row.state
            history = self.store.history(subtask_id)
            raise IllegalTransition(f"subtask {subtask_id}", current, verdict, history)

    async def _refuse_result(
        self, active: ActiveTask, subtask_id: str, reason: str
    ) -> asyncio.Future[tuple[str, str]]:
        """Fail a result that did not pass the checks on arrival; its verdict, settled."""
        log.warning("subtask %s: result refused: %s", subtask_id, reason)
        await self._apply(TakenBack(subtask_id, SubtaskState.FAILED, reason))
        refused: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        refused.set_result(("rejected", reason))
        return refused

    async def _verify(
        self, active: ActiveTask, subtask_id: str, judged: tuple[str, str] | None = None
    ) -> tuple[str, str]:
        """The app's Verify, then the rest of the ladder. `judged`: the app's verdict and reason, kept
        before a restart (the app refuses to verify a subtask twice); then the app is not asked again."""
        task_id = active.row.task_id
        if judged is not None:
            verdict, reason = VerifyResult[judged[0]], judged[1]
        else:
            try:
                verdict, reason, info = await self._verify_batches.verify(active.client, task_id, subtask_id)
            except GRPCError as exc:
                verdict, reason = VerifyResult.INCONCLUSIVE, f"Verify failed: {exc.message}"
            else:
                if verdict in (VerifyResult.SUCCESS, VerifyResult.FAILURE):  # final on the app's side
                    self.store.set_app_verdict(subtask_id, verdict.name, reason, info)
        # The rest of the ladder: re-execution of a sample, trust, journal (verification.py).
        verdict, reason = await self.verification.ladder(
            active, subtask_id, verdict, reason, self.core.offers
        )
        VERIFICATIONS.labels(verdict.name.lower()).inc()
        self._in_play(subtask_id, SubtaskState.ACCEPTED)
        if verdict is VerifyResult.INCONCLUSIVE:
            await self._apply(
                VerificationDone(subtask_id, Verdict.INCONCLUSIVE, f"verification {verdict.name}: {reason}")
            )
            return "rejected", reason
        if verdict is VerifyResult.FAILURE:
            log.warning("subtask %s rejected by the app: %s", subtask_id, reason)
            await self._apply(VerificationDone(subtask_id, Verdict.REJECTED, reason))
            return "rejected", reason
        await self._apply(VerificationDone(subtask_id, Verdict.ACCEPTED))
        subtask = self.store.subtask(subtask_id)
        FUEL.inc(subtask.fuel if subtask else 0)
        log.info("subtask %s accepted", subtask_id)
        return "accepted", ""

    async def report_failure(self, provider_id: str, subtask_id: str, reason: str) -> None:
        self._owned_subtask(provider_id, subtask_id)
        log.warning("provider %s failed subtask %s: %s", provider_id, subtask_id, reason)
        refused = is_refusal(reason)
        failed = f"provider {provider_id}: {reason}"
        await self._apply(TakenBack(subtask_id, SubtaskState.FAILED, failed, refuse=refused))

    async def leave(self, provider_id: str) -> None:
        """A provider leaves: its subtasks go back to pending at once, not at lease expiry."""
        await self._apply(ProviderLeft(provider_id))

    # the core's actions

    async def _apply(self, event: Event) -> None:
        """Feed one event to the scheduling core, run the actions it calls for, wake waiters."""
        await self._run(self.core.handle(event))
        self._notify()

    async def _run(self, actions: list[Action], assignments: list[npb.Assignment] | None = None) -> None:
        """Run actions in order; the actions of an answer fed back to the core run before the rest (as
        the nested calls they replace did). Assignments made go to `assignments`."""
        queue = deque(actions)
        while queue:
            action = queue.popleft()
            if isinstance(action, AskApp):  # with the asks right after it for the same task: one call
                asks = [action]
                while queue and _same_call(queue[0], action):
                    asks.append(queue.popleft())  # type: ignore[arg-type]
                follow_up = await self._ask_app(asks)
            else:
                follow_up = await self._execute(action, assignments)
            queue.extendleft(reversed(follow_up))

    async def _execute(self, action: Action, assignments: list[npb.Assignment] | None) -> list[Action]:
        """Run one action (not an AskApp) against the store and the app; the core's answer to what came
        back, if any."""
        match action:
            case Assign():
                assignment = self._assign_copy(action)
                if assignments is not None:
                    assignments.append(assignment)
            case WantReplica(_, primary_id, replica_id):
                primary = self.store.subtask(primary_id)
                assert primary is not None
                self.store.want_replica(replica_id, primary)
                self._notify()
            case ForgetRequest(subtask_id):
                self.store.forget_subtask(subtask_id)
            case AbortOnApp(task_id, subtask_id):
                active = self._active.get(task_id)
                if active is not None:
                    with contextlib.suppress(GRPCError, OSError, StreamTerminatedError):
                        await active.client.abort_subtask(task_id, subtask_id)
            case SetState(subtask_id, state, reason, forgiven):
                if reason == LEASE_EXPIRED:
                    row = self.store.subtask(subtask_id)
                    holder = row.provider_id if row is not None else "?"
                    log.warning("subtask %s: lease of provider %s expired", subtask_id, holder)
                self.store.set_subtask_state(subtask_id, state, reason, forgiven)
                SUBTASKS.labels(state).inc()
            case DropProvider(task_id, provider_id, reason):
                log.warning("provider %s dropped from task %s: %s", provider_id, task_id, reason)
                self.verification.trust.drop(provider_id, task_id, reason)
            case CheckFinished(task_id):
                active = self._active.get(task_id)
                if active is not None:
                    pending = await active.client.has_pending_subtasks(task_id)
                    return self.core.handle(PendingAnswered(task_id, pending))
            case FinishTask(task_id):
                await self._finish(task_id)
            case FailTask(task_id, reason):
                log.error("task %s failed: %s", task_id, reason)
                await self.abort_task(task_id, reason, state=TaskState.FAILED)
        return []

    async def _finish(self, task_id: str) -> None:
        """The core found the task done: its outputs are copied out (or it fails, if they are refused)."""
        outputs = self._outputs_dir(task_id)
        active = self._active.get(task_id)
        if active is None:
            return
        try:
            copy_tree(active.task_dir.task_outputs, outputs)
        except UnsafePath as exc:  # the app's guest put a link (or a FIFO...) among its outputs
            shutil.rmtree(outputs, ignore_errors=True)
            log.error("task %s failed: its outputs hold %s", task_id, exc)
            await self.abort_task(task_id, f"task outputs refused: {exc}", state=TaskState.FAILED)
            return
        self.store.set_task_state(task_id, TaskState.FINISHED)
        self._active.pop(task_id, None)
        log.info("task %s finished; outputs in %s", task_id, outputs)

    # leases and stranded tasks

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            try:
                await self.tick()
            except Exception:
                log.exception("lease reaper failed")

    async def tick(self) -> None:
        """The clock for the core: leases past their deadline expire, stranded tasks fail
        (RequestorConfig.stranded_s)."""
        offers = list(self.core.offers)
        excluded = {
            task_id: frozenset(p for p in offers if self.verification.excluded(p, task_id))
            for task_id in self._active
        }
        dropped = {
            task_id: frozenset(self.verification.trust.dropped_from(task_id)) for task_id in self._active
        }
        await self._apply(Tick(now_ms(), excluded, dropped))

    def _notify(self) -> None:
        """Wake everyone waiting for a change (a fresh event serves the next round of waiters)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_for_change(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def wait_for_task(self, task_id: str, poll_s: float = 0.05) -> npb.TaskStatus:
        """Wait until the task is no longer active; return its final status.

        Each change reads the task's state alone: the full status (bills, trust) is built once, at the end.
        """
        while True:
            row = self.store.task(task_id)
            if row is None or row.state is not TaskState.ACTIVE:
                return self.task_status(task_id)
            await self._wait_for_change(poll_s * 20)
