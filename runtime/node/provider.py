"""The provider: dials a requestor, takes subtasks it is allowed to run, computes them and returns results.

It computes up to `capacity` subtasks at once and, while its computes are short (provider_queue.py), holds
up to `queue` more assignments (offered at Join) that start as soon as a compute slot frees; their inputs
are fetched while they wait, their leases renewed by heartbeat, and one the requestor cancels is dropped
unstarted. A compute slot frees when its compute ends: the result's upload and the wait for its verdict go
on beside the next compute, at most `UNJUDGED_PER_SLOT` per slot (past that, the slot waits). Results go
up together: every one ready in one SubmitResults call, one call at a time (result_delivery.py).

Failures are reported at once (never left to a lease timeout); results are retried while the lease
lasts, so a requestor restart loses no finished work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, assert_never

from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from apps.sdk.wire_limits import BoundedChannel
from apps.sdk.workdir import ProviderTaskDir, check_id
from environments.base import PayloadKind
from environments.registry import UnknownEnvironment, payload_kind
from protos import node_pb2 as npb
from protos.node_grpc import RequestorStub
from runtime.node.activity import ProviderActivity
from runtime.node.compute import ComputeRunner
from runtime.node.errors import REFUSED_PREFIX
from runtime.node.identity import ProviderKey, sign_calls
from runtime.node.provider_queue import ComputeTimes
from runtime.node.requestor_service import TOKEN_REFUSED, bearer
from runtime.node.resources import Downloads, HashedFile
from runtime.node.result_delivery import ResultDelivery
from runtime.node.retry import Backoff, describe_failure, fatal_reason, sleep_unless_stopped

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 8
"""Assignments a provider offers to hold beyond its capacity (docs/node.md, Batching in the node)."""
UNJUDGED_PER_SLOT = 4
"""Results computed but not yet judged (uploading, or awaiting the verdict) a provider keeps per compute
slot; past that, a finished compute keeps its slot until one is judged."""


class Refused(Exception):
    """An assignment this provider will not run (off its whitelist); the message says why."""

    @property
    def report_reason(self) -> str:
        """The ReportFailure reason that tells the requestor this was a refusal, not a failure."""
        return f"{REFUSED_PREFIX}{self}"


class RequestorRefused(Exception):
    """The requestor will not have this provider (a wrong token, a refused offer), or its TLS certificate
    does not verify; the message says why."""

    def __init__(self, address: str, error: BaseException) -> None:
        if isinstance(error, GRPCError) and (error.status, error.message) == (
            Status.UNAUTHENTICATED,
            TOKEN_REFUSED,
        ):
            message = f"requestor at {address} refused the token"
        elif isinstance(error, GRPCError):
            message = f"requestor at {address} refused this provider: {describe_failure(error)}"
        else:
            message = f"requestor at {address}: {fatal_reason(error) or describe_failure(error)}"
        super().__init__(message)


def _may_have_forgotten_us(error: Exception) -> bool:
    """After this failure the requestor may not know this provider (not joined, restarted): join again."""
    if isinstance(error, GRPCError):
        return error.status in (Status.FAILED_PRECONDITION, Status.UNAVAILABLE)
    return isinstance(error, (OSError, StreamTerminatedError))


@dataclass
class Whitelist:
    """What this provider runs: wasm modules by sha256, local apps by name, docker images by repository or
    image id (digest). Everything else is refused."""

    wasm_modules: set[str] = field(default_factory=set)
    local_apps: set[str] = field(default_factory=set)
    docker_repositories: set[str] = field(default_factory=set)
    docker_digests: set[str] = field(default_factory=set)

    def check(self, assignment: npb.Assignment) -> None:
        """`Refused` unless the build the assignment would run is whitelisted, told by what builds of its
        environment are (`environments.registry.payload_kind`)."""
        try:
            kind = payload_kind(assignment.env_id)
        except UnknownEnvironment as exc:
            named = repr(assignment.env_id[:64]) + ("..." if len(assignment.env_id) > 64 else "")
            raise Refused(f"environment {named} is not enabled here") from exc
        if kind is PayloadKind.WASM_MODULE:
            digest = assignment.app_module.sha256
            if digest not in self.wasm_modules:
                raise Refused(f"wasm module sha256 {digest} of app {assignment.app_name} is not whitelisted")
        elif kind is PayloadKind.PYTHON_PACKAGE:
            if assignment.app_name not in self.local_apps:
                raise Refused(f"local app {assignment.app_name!r} is not whitelisted")
        elif kind is PayloadKind.CONTAINER_IMAGE:
            self._check_docker(assignment)
        else:
            assert_never(kind)

    def _check_docker(self, assignment: npb.Assignment) -> None:
        try:
            prerequisites = json.loads(assignment.prerequisites_json or "{}")
            image, digest = str(prerequisites["image"]), prerequisites.get("digest")
        except (ValueError, KeyError, TypeError) as exc:
            raise Refused(f"docker prerequisites of app {assignment.app_name} are malformed") from exc
        if digest is not None and digest in self.docker_digests:
            return
        if image not in self.docker_repositories:
            pinned = f" (image id {digest})" if digest else ""
            raise Refused(f"docker image {image}{pinned} of app {assignment.app_name} is not whitelisted")


@dataclass
class ProviderConfig:
    host: str
    port: int
    token: str
    data_dir: Path
    capacity: int = 2
    price: float = 1.0
    tls: ssl.SSLContext | None = None
    memory_mib: int | None = None
    """Memory offered per subtask; None: this machine's memory shared by `capacity` subtasks."""
    queue: int = DEFAULT_QUEUE
    """Assignments held beyond `capacity`, waiting for a compute slot (used while computes are short)."""

    def offered_memory_mib(self) -> int:
        if self.memory_mib is not None:
            return self.memory_mib
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return max(1, total // (1024 * 1024) // max(1, self.capacity))


class ProviderNode:
    """One provider: `run()` until `stop` is set, computing up to `capacity` subtasks at once and holding up
    to `queue` more."""

    def __init__(self, config: ProviderConfig, runners: list[ComputeRunner], whitelist: Whitelist) -> None:
        self.config = config
        self.runners = {runner.env_id: runner for runner in runners}
        self.whitelist = whitelist
        self.key = ProviderKey.load_or_create(config.data_dir)
        self.provider_id = self.key.provider_id
        self._running: dict[str, asyncio.Task[None]] = {}
        """Every assignment held: queued, computing, or its result on its way."""
        self._uncomputed: set[str] = set()
        """Assignments queued or computing (what capacity + queue bound)."""
        self._slot_freed = asyncio.Event()
        self._compute_slots = asyncio.Semaphore(config.capacity)
        self._unjudged = asyncio.Semaphore(config.capacity * UNJUDGED_PER_SLOT)
        self.times = ComputeTimes()
        self._heartbeat_ms = 5000
        self.completed = 0
        self._downloads = Downloads()
        self._prepared_tasks: set[str] = set()  # task dirs made once, not on every compute
        self.activity = ProviderActivity()

    async def benchmarks(self, refresh: bool = False) -> dict[str, float]:
        """Scores per environment, measured on first start and stored in the data dir."""
        path = self.config.data_dir / "benchmarks.json"
        stored: dict[str, float] = {} if refresh or not path.is_file() else json.loads(path.read_text())
        for env_id, runner in self.runners.items():
            if env_id not in stored:
                stored[env_id] = await runner.benchmark()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored))
        return stored

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    async def run(self, stop: asyncio.Event) -> None:
        """Join and work until `stop` is set; `RequestorRefused` if the requestor will not have this provider
        (an authentication refusal, a refused offer) or its TLS certificate does not verify. Any other
        failure (unreachable, restarting, an error of the requestor or of one of its apps) is logged and
        retried with backoff (retry.py), never fatal."""
        channel = BoundedChannel(self.config.host, self.config.port, ssl=self.config.tls)
        sign_calls(channel, self.key)
        stub = RequestorStub(channel)
        metadata = bearer(self.config.token)
        delivery = ResultDelivery(stub, metadata)
        try:
            await self._join(stub, metadata, stop)
            heartbeat = asyncio.create_task(self._heartbeat_forever(stub, metadata))
            try:
                await self._work(stub, metadata, delivery, stop)
            finally:
                heartbeat.cancel()
                for task in self._running.values():
                    task.cancel()
                await asyncio.gather(*self._running.values(), return_exceptions=True)
                await delivery.close()
                with contextlib.suppress(GRPCError, OSError, StreamTerminatedError):
                    await stub.Leave(
                        npb.LeaveRequest(provider_id=self.provider_id), metadata=metadata, timeout=5
                    )
        finally:
            for runner in self.runners.values():
                await runner.close()
            channel.close()

    async def _join(self, stub: RequestorStub, metadata: dict[str, str], stop: asyncio.Event) -> None:
        scores = await self.benchmarks()
        offer = npb.Offer(
            provider_id=self.provider_id,
            envs=[npb.EnvOffer(env_id=env_id, benchmark_score=score) for env_id, score in scores.items()],
            price=self.config.price,
            capacity=self.config.capacity,
            memory_mib=self.config.offered_memory_mib(),
            queue=self.config.queue,
        )
        backoff = Backoff()
        while not stop.is_set():
            try:
                reply = await stub.Join(npb.JoinRequest(offer=offer), metadata=metadata, timeout=10)
                self._heartbeat_ms = reply.heartbeat_ms or self._heartbeat_ms
                log.info("provider %s joined %s:%d", self.provider_id, self.config.host, self.config.port)
                return
            except Exception as exc:
                if isinstance(exc, GRPCError) and exc.status is Status.INVALID_ARGUMENT:
                    raise RequestorRefused(self.address, exc) from exc  # this offer can never be taken
                await self._retry_after("Join", exc, backoff, stop)

    async def _retry_after(self, call: str, error: Exception, backoff: Backoff, stop: asyncio.Event) -> None:
        """Log a failed call and wait before it is tried again; `RequestorRefused` if no retry can mend it
        (an authentication refusal, a TLS certificate that does not verify)."""
        if fatal_reason(error) is not None:
            raise RequestorRefused(self.address, error) from error
        delay = backoff.next_delay()
        expected = isinstance(error, (GRPCError, OSError, StreamTerminatedError))
        log.warning(
            "%s failed (%s); retrying in %.1f s",
            call,
            describe_failure(error),
            delay,
            exc_info=None if expected else error,
        )
        await sleep_unless_stopped(delay, stop)

    async def _work(
        self, stub: RequestorStub, metadata: dict[str, str], delivery: ResultDelivery, stop: asyncio.Event
    ) -> None:
        backoff = Backoff()
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._running = {k: t for k, t in self._running.items() if not t.done()}
            free = self._places() - len(self._uncomputed)
            if free < self._ask_for_at_least():
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            asked = loop.time()
            try:
                reply = await stub.RequestWork(
                    npb.WorkRequest(provider_id=self.provider_id, slots=free, wait_ms=500),
                    metadata=metadata,
                    timeout=35,
                )
            except Exception as exc:
                await self._retry_after("RequestWork", exc, backoff, stop)
                if _may_have_forgotten_us(exc):
                    await self._join(stub, metadata, stop)
                continue
            backoff.reset()
            if reply.assignments:
                self.times.asked(loop.time() - asked)
            for assignment in reply.assignments:
                self.activity.started(assignment)
                self._uncomputed.add(assignment.subtask_id)
                running = asyncio.create_task(self._execute(stub, metadata, delivery, assignment))
                running.add_done_callback(functools.partial(self._ended, assignment.subtask_id))
                self._running[assignment.subtask_id] = running

    def _places(self) -> int:
        """How many assignments to hold uncomputed now: the capacity, and the queue while it pays."""
        return self.config.capacity + (self.config.queue if self.times.queue_pays() else 0)

    def _ask_for_at_least(self) -> int:
        """How many places must be free before the provider asks for work: one while the queue is not
        used (long computes: a freed slot is filled at once), half the queue while it is, so that one
        RequestWork (and one app call on the requestor's side) brings several assignments while the other
        half of the queue keeps the compute slots busy during its round trip."""
        return max(1, self.config.queue // 2) if self.times.queue_pays() else 1

    def _ended(self, subtask_id: str, _: asyncio.Task[None]) -> None:
        self.activity.ended(subtask_id)
        self._computed(subtask_id)

    def _computed(self, subtask_id: str) -> None:
        """The assignment no longer waits for or takes a compute slot: room for the next."""
        self._uncomputed.discard(subtask_id)
        self._slot_freed.set()

    async def _heartbeat_forever(self, stub: RequestorStub, metadata: dict[str, str]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_ms / 1000)
            live = [subtask_id for subtask_id, task in self._running.items() if not task.done()]
            try:
                reply = await stub.Heartbeat(
                    npb.HeartbeatRequest(provider_id=self.provider_id, subtask_ids=live),
                    metadata=metadata,
                    timeout=10,
                )
            except (GRPCError, OSError, StreamTerminatedError) as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            for subtask_id in reply.cancelled_subtask_ids:
                task = self._running.get(subtask_id)
                if task is not None:
                    log.info("subtask %s cancelled by the requestor", subtask_id)
                    task.cancel()

    async def _execute(
        self,
        stub: RequestorStub,
        metadata: dict[str, str],
        delivery: ResultDelivery,
        assignment: npb.Assignment,
    ) -> None:
        try:
            computed = await self._compute(stub, metadata, assignment)
        finally:
            self._computed(assignment.subtask_id)
        if computed is None:
            return
        result, usage = computed
        try:
            await self._submit(delivery, assignment, result, usage)
        finally:
            self._unjudged.release()

    async def _compute(
        self, stub: RequestorStub, metadata: dict[str, str], assignment: npb.Assignment
    ) -> tuple[HashedFile, npb.Usage] | None:
        """Fetch the inputs, wait for a compute slot, compute; the result (holding a place among the
        unjudged ones), or None once a failure was reported."""
        subtask_id = assignment.subtask_id
        try:
            self.whitelist.check(assignment)
            runner = self.runners.get(assignment.env_id)
            if runner is None:
                raise Refused(f"environment {assignment.env_id!r} is not enabled here")
            task_dir = ProviderTaskDir(
                self.config.data_dir / "work" / check_id("task id", assignment.task_id)
            )
            if assignment.task_id not in self._prepared_tasks:
                task_dir.prepare()
                self._prepared_tasks.add(assignment.task_id)
            module = await self._fetch_module(stub, metadata, assignment)
            for resource in assignment.resources:
                target = task_dir.subtask_inputs / check_id("resource name", resource.name)
                await self._fetch(stub, metadata, resource, target)
            async with self._compute_slots:
                began = asyncio.get_running_loop().time()
                outcome = await runner.compute(assignment, task_dir, module)
                self.times.computed(asyncio.get_running_loop().time() - began)
                # Opened without following links: a guest's link to a host file is refused (UnsafePath),
                # and the bytes sent are the bytes hashed here.
                result = await HashedFile.open_off_loop_if_big(task_dir.root, outcome.output)
                try:
                    await self._unjudged.acquire()  # the slot stays taken while too many await verdicts
                except BaseException:
                    result.close()
                    raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = exc.report_reason if isinstance(exc, Refused) else f"{type(exc).__name__}: {exc}"
            log.warning("subtask %s failed here: %s", subtask_id, reason)
            self.activity.failed_here(subtask_id, reason)
            with contextlib.suppress(GRPCError, OSError, StreamTerminatedError):
                await stub.ReportFailure(
                    npb.FailureReport(provider_id=self.provider_id, subtask_id=subtask_id, reason=reason),
                    metadata=metadata,
                    timeout=10,
                )
            return None
        return result, outcome.usage

    async def _fetch_module(
        self, stub: RequestorStub, metadata: dict[str, str], assignment: npb.Assignment
    ) -> Path | None:
        if not assignment.app_module.sha256:
            return None
        target = self.config.data_dir / "modules" / f"{assignment.app_module.sha256}.wasm"
        await self._fetch(stub, metadata, assignment.app_module, target)
        return target

    async def _fetch(
        self, stub: RequestorStub, metadata: dict[str, str], resource: npb.Resource, target: Path
    ) -> None:
        """Download a content-addressed file unless a verified copy is there; check its sha256 on arrival.
        One download per file at a time: concurrent subtasks needing it wait for the one in flight."""

        async def download(handle: BinaryIO) -> None:
            async with stub.FetchResource.open(metadata=metadata, timeout=60) as stream:
                await stream.send_message(npb.FetchRequest(sha256=resource.sha256), end=True)
                async for chunk in stream:
                    handle.write(chunk.data)

        await self._downloads.ensure(target, resource.sha256, download, f"resource {resource.name}")

    async def _submit(
        self, delivery: ResultDelivery, assignment: npb.Assignment, result: HashedFile, usage: npb.Usage
    ) -> None:
        """Send the result (result_delivery.py, which closes it) and note the verdict."""
        header = npb.ResultHeader(
            provider_id=self.provider_id,
            subtask_id=assignment.subtask_id,
            file_name=result.name,
            size=result.size,
            sha256=result.sha256,
            usage=usage,
        )
        verdict = await delivery.deliver(header, result, assignment.deadline_ms)
        if verdict is None:
            return
        if verdict.status != Status.OK.value:
            log.warning("subtask %s: result not taken: %s", assignment.subtask_id, verdict.reason)
            return
        log.info("subtask %s %s %s", assignment.subtask_id, verdict.verdict, verdict.reason)
        self.activity.judged(assignment.subtask_id, verdict, usage)
        self.completed += 1
