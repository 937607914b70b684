"""gRPC servers for app handlers, and the app entrypoint `<app> requestor PORT` / `<app> provider PORT`.

Both servers also serve the standard health service `grpc.health.v1` (polled by nodes before the
first call). Every call is checked against the protocol state machine before it reaches a handler;
errors raised by a handler reach the caller as a gRPC status with a readable message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.check import ServiceStatus
from grpclib.health.service import Health
from grpclib.server import Stream

from apps.sdk.batch import BatchRequestorHandler, check_batch
from apps.sdk.errors import AppError, InvalidArgument, Unavailable
from apps.sdk.handlers import JsonDict, ProviderAppHandler, RequestorAppHandler, Subtask, VerifyResult
from apps.sdk.parent import die_with_parent
from apps.sdk.protocol_state import ProtocolState, SubtaskState, TaskRecord, TaskState
from apps.sdk.result_info import RESULT_INFO_KEY, ReportsResultInfo, checked, encode
from apps.sdk.sandboxed_files import UnsafePath, check_file
from apps.sdk.wire_limits import BoundedServer, short_message
from apps.sdk.workdir import ProviderTaskDir, RequestorWorkDir, check_id
from protos import taskapi_pb2 as pb
from protos.taskapi_grpc import ProviderAppBase, RequestorAppBase, RequestorAppBatchBase

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
HOST_VARIABLE = "TASKAPI_APP_HOST"
"""The address a server listens on when started without `--host`, where set (else DEFAULT_HOST). Our app
images set it to 0.0.0.0: Golem starts an image as `IMAGE requestor PORT` and dials the container's
address, so inside a container the server must listen on all interfaces; run on a host, it stays on
loopback."""
SHUTDOWN_GRACE_S = 10.0


def parse_json_object(kind: str, text: str) -> JsonDict:
    """Decode a JSON object from a request field, or raise InvalidArgument naming the field."""
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{kind} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"{kind} must be a JSON object, got {type(value).__name__}")
    return value


def checked_id(kind: str, value: str) -> str:
    try:
        return check_id(kind, value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc


@dataclass(frozen=True)
class WithTrailers:
    """A reply to send with trailing metadata (see apps/sdk/result_info.py)."""

    message: Any
    metadata: dict[str, str]


class CallGate:
    """Tracks in-flight calls, refuses new ones once shutdown is requested, and says when all are done."""

    def __init__(self) -> None:
        self.shutdown_requested = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0
        self.health = ServiceStatus()
        self.health.set(True)

    def request_shutdown(self) -> None:
        self.health.set(False)
        self.shutdown_requested.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def serve(self, stream: Stream[Any, Any], handle: Callable[[Any], Awaitable[Any]]) -> None:
        """Receive one request, run `handle` on it and send its reply, translating errors to gRPC statuses."""
        request = await stream.recv_message()
        if self.shutdown_requested.is_set():
            raise GRPCError(Status.UNAVAILABLE, Unavailable("the app is shutting down").message)
        self._in_flight += 1
        self._idle.clear()
        try:
            try:
                reply = await handle(request)
            except AppError as exc:
                raise GRPCError(exc.status, short_message(exc.message)) from exc
            except GRPCError as exc:
                raise GRPCError(exc.status, short_message(exc.message or ""), exc.details) from exc
            except Exception as exc:
                log.exception("handler failed")
                message = short_message(f"app error: {type(exc).__name__}: {exc}")
                raise GRPCError(Status.INTERNAL, message) from exc
            trailers = None
            if isinstance(reply, WithTrailers):
                reply, trailers = reply.message, reply.metadata
            await stream.send_message(reply)
            await stream.send_trailing_metadata(metadata=trailers)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()


class _TaskLocks:
    """One lock per task id, so calls on one task are serialised and different tasks run concurrently."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, task_id: str) -> asyncio.Lock:
        return self._locks.setdefault(task_id, asyncio.Lock())


class RequestorAppService(RequestorAppBase):
    """Serves a `RequestorAppHandler`, enforcing the protocol state machine of docs/protocol.md."""

    def __init__(self, work_dir: Path, handler: RequestorAppHandler, gate: CallGate) -> None:
        self._work_dir = RequestorWorkDir(work_dir)
        self._handler = handler
        self._gate = gate
        self._lock = _TaskLocks()

    def _state(self, task_id: str) -> ProtocolState:
        return ProtocolState(self._work_dir.task_dir(checked_id("task id", task_id)), task_id)

    async def CreateTask(self, stream: Stream[pb.CreateTaskRequest, pb.CreateTaskReply]) -> None:
        await self._gate.serve(stream, self._create_task)

    async def _create_task(self, request: pb.CreateTaskRequest) -> pb.CreateTaskReply:
        state = self._state(request.task_id)
        if request.max_subtasks_count < 1:
            raise InvalidArgument(f"max_subtasks_count must be >= 1, got {request.max_subtasks_count}")
        params = parse_json_object("task_params_json", request.task_params_json)
        async with self._lock(request.task_id):
            state.require_new()
            state.task_dir.prepare()
            task = await self._handler.create_task(state.task_dir, request.max_subtasks_count, params)
            state.save(TaskRecord())
        return pb.CreateTaskReply(
            env_id=task.env_id,
            prerequisites_json=json.dumps(task.prerequisites),
            inf_requirements=pb.Infrastructure(min_memory_mib=task.min_memory_mib),
        )

    async def NextSubtask(self, stream: Stream[pb.NextSubtaskRequest, pb.NextSubtaskReply]) -> None:
        await self._gate.serve(stream, self._next_subtask)

    async def _next_subtask(self, request: pb.NextSubtaskRequest) -> pb.NextSubtaskReply:
        state = self._state(request.task_id)
        subtask_id = checked_id("subtask id", request.subtask_id)
        async with self._lock(request.task_id):
            record = state.require_active()
            state.require_new_subtask(record, subtask_id)
            # Written ahead: if the process dies inside the handler, the record still knows the id, so
            # AbortSubtask can give back whatever work the app assigned to it before dying.
            record.subtasks[subtask_id] = SubtaskState.ASSIGNED
            state.save(record)
            try:
                subtask = await self._handler.next_subtask(state.task_dir, subtask_id, request.opaque_node_id)
            except BaseException:
                del record.subtasks[subtask_id]
                state.save(record)
                raise
            if subtask is None:
                del record.subtasks[subtask_id]
                state.save(record)
        return _next_subtask_reply(subtask)

    async def next_subtasks(self, request: pb.NextSubtasksRequest) -> pb.NextSubtasksReply:
        """RequestorAppBatch.NextSubtasks: NextSubtask for each ask, under one hold of the task's lock, the
        record written ahead and saved once. Every id is checked before any reaches the handler."""
        state = self._state(request.task_id)
        asks = [(checked_id("subtask id", ask.subtask_id), ask.opaque_node_id) for ask in request.asks]
        check_batch("asks", [subtask_id for subtask_id, _ in asks])
        async with self._lock(request.task_id):
            record = state.require_active()
            for subtask_id, _ in asks:
                state.require_new_subtask(record, subtask_id)
                record.subtasks[subtask_id] = SubtaskState.ASSIGNED
            state.save(record)  # written ahead, as for NextSubtask
            subtasks: list[Subtask | None] = []
            pending: bool | None = None
            try:
                batch = None
                if isinstance(self._handler, BatchRequestorHandler):
                    batch = await self._handler.next_subtasks(state.task_dir, asks)
                if batch is not None:
                    _check_count("next_subtasks", len(asks), len(batch.subtasks))
                    subtasks, pending = batch.subtasks, batch.has_pending
                else:
                    for subtask_id, opaque_node_id in asks:
                        subtasks.append(
                            await self._handler.next_subtask(state.task_dir, subtask_id, opaque_node_id)
                        )
            finally:  # ids the app handed nothing (or never reached) are forgotten
                for (subtask_id, _), subtask in zip_longest(asks, subtasks):
                    if subtask is None:
                        del record.subtasks[subtask_id]
                state.save(record)
            if pending is None:
                pending = await self._handler.has_pending_subtasks(state.task_dir)
        return pb.NextSubtasksReply(
            replies=[_next_subtask_reply(subtask) for subtask in subtasks], has_pending_subtasks=pending
        )

    async def Verify(self, stream: Stream[pb.VerifyRequest, pb.VerifyReply]) -> None:
        await self._gate.serve(stream, self._verify)

    async def _verify(self, request: pb.VerifyRequest) -> pb.VerifyReply | WithTrailers:
        state = self._state(request.task_id)
        async with self._lock(request.task_id):
            record = state.require_active()
            state.require_assigned(record, request.subtask_id)
            state.require_results(request.subtask_id)
            verdict, reason = await self._handler.verify(state.task_dir, request.subtask_id)
            next_state = ProtocolState.after_verify(verdict)
            if next_state is not None:
                record.subtasks[request.subtask_id] = next_state
                state.save(record)
            info = await self._result_info(state, request.subtask_id, verdict)
        reply = _verify_reply(verdict, reason)
        return WithTrailers(reply, {RESULT_INFO_KEY: encode(info)}) if info else reply

    async def verify_batch(self, request: pb.VerifyBatchRequest) -> pb.VerifyBatchReply:
        """RequestorAppBatch.VerifyBatch: Verify for each id, under one hold of the task's lock, the record
        saved once. Every id is checked (assigned, results delivered) before any reaches the handler."""
        state = self._state(request.task_id)
        subtask_ids = [checked_id("subtask id", subtask_id) for subtask_id in request.subtask_ids]
        check_batch("subtask_ids", subtask_ids)
        async with self._lock(request.task_id):
            record = state.require_active()
            for subtask_id in subtask_ids:
                state.require_assigned(record, subtask_id)
                state.require_results(subtask_id)
            verdicts: list[tuple[VerifyResult, str]] = []
            try:
                batch = None
                if isinstance(self._handler, BatchRequestorHandler):
                    batch = await self._handler.verify_batch(state.task_dir, subtask_ids)
                if batch is not None:
                    _check_count("verify_batch", len(subtask_ids), len(batch))
                    verdicts = batch
                else:
                    for subtask_id in subtask_ids:
                        verdicts.append(await self._handler.verify(state.task_dir, subtask_id))
            finally:  # the verdicts reached stand, as their single calls' would
                for subtask_id, (verdict, _) in zip(subtask_ids, verdicts, strict=False):
                    next_state = ProtocolState.after_verify(verdict)
                    if next_state is not None:
                        record.subtasks[subtask_id] = next_state
                state.save(record)
            infos = [
                await self._result_info(state, subtask_id, verdict)
                for subtask_id, (verdict, _) in zip(subtask_ids, verdicts, strict=True)
            ]
        return pb.VerifyBatchReply(
            verdicts=[
                pb.VerifiedSubtask(reply=_verify_reply(verdict, reason), result_info=info)
                for (verdict, reason), info in zip(verdicts, infos, strict=True)
            ]
        )

    async def _result_info(
        self, state: ProtocolState, subtask_id: str, verdict: VerifyResult
    ) -> dict[str, str]:
        """The facts a handler that reports them gives about a result just verified SUCCESS; {} otherwise."""
        if verdict is not VerifyResult.SUCCESS or not isinstance(self._handler, ReportsResultInfo):
            return {}
        try:
            return checked(await self._handler.result_info(state.task_dir, subtask_id))
        except Exception:  # optional facts: the verdict, already recorded, must still arrive
            log.exception("result_info failed for subtask %s", subtask_id)
            return {}

    async def DiscardSubtasks(
        self, stream: Stream[pb.DiscardSubtasksRequest, pb.DiscardSubtasksReply]
    ) -> None:
        await self._gate.serve(stream, self._discard_subtasks)

    async def _discard_subtasks(self, request: pb.DiscardSubtasksRequest) -> pb.DiscardSubtasksReply:
        state = self._state(request.task_id)
        async with self._lock(request.task_id):
            record = state.require_active()
            candidates = ProtocolState.discardable(record, list(request.subtask_ids))
            discarded = await self._handler.discard_subtasks(state.task_dir, candidates) if candidates else []
            unexpected = set(discarded) - set(candidates)
            if unexpected:
                raise AppError(f"app discarded subtasks it was not asked to: {sorted(unexpected)}")
            for subtask_id in discarded:
                record.subtasks[subtask_id] = SubtaskState.DISCARDED
            state.save(record)
        return pb.DiscardSubtasksReply(discarded_subtask_ids=discarded)

    async def RunBenchmark(self, stream: Stream[pb.RunBenchmarkRequest, pb.RunBenchmarkReply]) -> None:
        await self._gate.serve(stream, self._run_benchmark)

    async def _run_benchmark(self, request: pb.RunBenchmarkRequest) -> pb.RunBenchmarkReply:
        return pb.RunBenchmarkReply(score=await self._handler.run_benchmark(self._work_dir.root))

    async def HasPendingSubtasks(
        self, stream: Stream[pb.HasPendingSubtasksRequest, pb.HasPendingSubtasksReply]
    ) -> None:
        await self._gate.serve(stream, self._has_pending_subtasks)

    async def _has_pending_subtasks(
        self, request: pb.HasPendingSubtasksRequest
    ) -> pb.HasPendingSubtasksReply:
        state = self._state(request.task_id)
        async with self._lock(request.task_id):
            record = state.load()
            pending = record.state is TaskState.ACTIVE and await self._handler.has_pending_subtasks(
                state.task_dir
            )
        return pb.HasPendingSubtasksReply(has_pending_subtasks=pending)

    async def AbortTask(self, stream: Stream[pb.AbortTaskRequest, pb.AbortTaskReply]) -> None:
        await self._gate.serve(stream, self._abort_task)

    async def _abort_task(self, request: pb.AbortTaskRequest) -> pb.AbortTaskReply:
        state = self._state(request.task_id)
        async with self._lock(request.task_id):
            record = state.load()
            if record.state is TaskState.ACTIVE:
                await self._handler.abort_task(state.task_dir)
                record.state = TaskState.ABORTED
                for subtask_id, subtask_state in record.subtasks.items():
                    if subtask_state is SubtaskState.ASSIGNED:
                        record.subtasks[subtask_id] = SubtaskState.ABORTED
                state.save(record)
        return pb.AbortTaskReply()

    async def AbortSubtask(self, stream: Stream[pb.AbortSubtaskRequest, pb.AbortSubtaskReply]) -> None:
        await self._gate.serve(stream, self._abort_subtask)

    async def _abort_subtask(self, request: pb.AbortSubtaskRequest) -> pb.AbortSubtaskReply:
        state = self._state(request.task_id)
        async with self._lock(request.task_id):
            record = state.require_active()
            state.require_assigned(record, request.subtask_id)
            await self._handler.abort_subtask(state.task_dir, request.subtask_id)
            record.subtasks[request.subtask_id] = SubtaskState.ABORTED
            state.save(record)
        return pb.AbortSubtaskReply()

    async def Shutdown(self, stream: Stream[pb.ShutdownRequest, pb.ShutdownReply]) -> None:
        await self._gate.serve(stream, self._shutdown)

    async def _shutdown(self, request: pb.ShutdownRequest) -> pb.ShutdownReply:
        self._gate.request_shutdown()
        return pb.ShutdownReply()


class RequestorAppBatchService(RequestorAppBatchBase):
    """Serves RequestorAppBatch beside a `RequestorAppService`, sharing its gate, locks and records."""

    def __init__(self, service: RequestorAppService, gate: CallGate) -> None:
        self._service = service
        self._gate = gate

    async def NextSubtasks(self, stream: Stream[pb.NextSubtasksRequest, pb.NextSubtasksReply]) -> None:
        await self._gate.serve(stream, self._service.next_subtasks)

    async def VerifyBatch(self, stream: Stream[pb.VerifyBatchRequest, pb.VerifyBatchReply]) -> None:
        await self._gate.serve(stream, self._service.verify_batch)


def _next_subtask_reply(subtask: Subtask | None) -> pb.NextSubtaskReply:
    if subtask is None:
        return pb.NextSubtaskReply()
    return pb.NextSubtaskReply(
        subtask=pb.SubtaskReply(subtask_params_json=json.dumps(subtask.params), resources=subtask.resources)
    )


def _verify_reply(verdict: VerifyResult, reason: str) -> pb.VerifyReply:
    return pb.VerifyReply(result=VerifyResult(verdict).value, reason=reason)  # type: ignore[arg-type]


def _check_count(method: str, asked: int, answered: int) -> None:
    if answered != asked:
        raise AppError(f"app's {method} answered {answered} of {asked} subtasks")


class ProviderAppService(ProviderAppBase):
    """Serves a `ProviderAppHandler` for one task dir.

    In single-call mode (Golem's convention) the server shuts down after one Compute or RunBenchmark;
    otherwise it keeps serving until Shutdown.
    """

    def __init__(
        self, task_dir: Path, handler: ProviderAppHandler, gate: CallGate, single_call: bool
    ) -> None:
        self._task_dir = ProviderTaskDir(task_dir)
        self._handler = handler
        self._gate = gate
        self._single_call = single_call

    async def Compute(self, stream: Stream[pb.ComputeRequest, pb.ComputeReply]) -> None:
        await self._gate.serve(stream, self._compute)

    async def _compute(self, request: pb.ComputeRequest) -> pb.ComputeReply:
        try:
            subtask_id = checked_id("subtask id", request.subtask_id)
            params = parse_json_object("subtask_params_json", request.subtask_params_json)
            self._task_dir.prepare()
            self._task_dir.subtask_dir(subtask_id).mkdir(exist_ok=True)
            output = await self._handler.compute(self._task_dir, subtask_id, params)
            self._check_output(output)
        finally:
            self._after_call()
        return pb.ComputeReply(output_filepath=str(output))

    def _check_output(self, output: Path) -> None:
        """The output must be a regular file inside the task dir, reached without a link (the node reads
        it without following links: see sandboxed_files)."""
        try:
            check_file(self._task_dir.root, output)
        except UnsafePath as exc:
            raise AppError(f"app returned an unusable output path: {exc}") from exc
        except OSError as exc:
            raise AppError(f"app returned an output path that is not a file: {output}") from exc

    async def RunBenchmark(self, stream: Stream[pb.RunBenchmarkRequest, pb.RunBenchmarkReply]) -> None:
        await self._gate.serve(stream, self._run_benchmark)

    async def _run_benchmark(self, request: pb.RunBenchmarkRequest) -> pb.RunBenchmarkReply:
        try:
            score = await self._handler.run_benchmark(self._task_dir.root)
        finally:
            self._after_call()
        return pb.RunBenchmarkReply(score=score)

    def _after_call(self) -> None:
        if self._single_call:
            self._gate.request_shutdown()

    async def Shutdown(self, stream: Stream[pb.ShutdownRequest, pb.ShutdownReply]) -> None:
        await self._gate.serve(stream, self._shutdown)

    async def _shutdown(self, request: pb.ShutdownRequest) -> pb.ShutdownReply:
        self._gate.request_shutdown()
        return pb.ShutdownReply()


async def serve(
    service: RequestorAppService | ProviderAppService, gate: CallGate, host: str, port: int
) -> None:
    """Serve `service` (a requestor's with RequestorAppBatch beside it) and the health service until shutdown
    is requested, then drain calls and stop."""
    handlers: list[Any] = [service, Health({service: [gate.health]})]
    if isinstance(service, RequestorAppService):
        handlers.append(RequestorAppBatchService(service, gate))
    server = BoundedServer(handlers)
    await server.start(host, port)
    log.info("app listening on %s:%d", host, port)
    print(f"taskapi app listening on {host}:{port}", flush=True)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, gate.request_shutdown)
    await gate.shutdown_requested.wait()
    try:
        await asyncio.wait_for(gate.wait_idle(), SHUTDOWN_GRACE_S)
    except TimeoutError:
        log.warning("calls still running after %.0f s; cancelling them", SHUTDOWN_GRACE_S)
    server.close()
    await server.wait_closed()


def main(
    argv: list[str],
    *,
    requestor: Callable[[], RequestorAppHandler],
    provider: Callable[[], ProviderAppHandler],
    prog: str = "app",
) -> int:
    """The app entrypoint: `requestor PORT` or `provider PORT`, serving the current directory as work dir.

    Started by a node (`AppProcess`), the server dies with it (`apps.sdk.parent.die_with_parent`).
    """
    die_with_parent()
    parser = argparse.ArgumentParser(prog=prog, description="Serve a task-api app over gRPC.")
    parser.add_argument("role", choices=["requestor", "provider"])
    parser.add_argument("port", type=int)
    default_host = os.environ.get(HOST_VARIABLE) or DEFAULT_HOST
    parser.add_argument("--host", default=default_host, help="address to listen on (default %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=Path.cwd(), help="default: the current directory")
    parser.add_argument(
        "--persistent",
        action="store_true",
        help="provider: keep serving after Compute / RunBenchmark (default: one call, Golem's convention)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    gate = CallGate()
    service: RequestorAppService | ProviderAppService
    if args.role == "requestor":
        service = RequestorAppService(args.work_dir, requestor(), gate)
    else:
        service = ProviderAppService(args.work_dir, provider(), gate, single_call=not args.persistent)
    asyncio.run(serve(service, gate, args.host, args.port))
    return 0
