"""Node-side clients for RequestorApp and ProviderApp, over a grpclib channel.

Every failure surfaces as `grpclib.exceptions.GRPCError`: an app's refusal keeps its status and
message, and an app that is not (or no longer) running gives UNAVAILABLE naming its address.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from apps.sdk.batch import MAX_BATCH, check_batch
from apps.sdk.channel import AppChannel
from apps.sdk.errors import InvalidArgument
from apps.sdk.handlers import CreatedTask, JsonDict, Subtask, VerifyResult
from apps.sdk.result_info import RESULT_INFO_KEY, checked, decode
from protos import taskapi_pb2 as pb
from protos.taskapi_grpc import ProviderAppStub, RequestorAppBatchStub, RequestorAppStub

T = TypeVar("T")
U = TypeVar("U")

CALL_TIMEOUT_S = 300.0


async def wait_until_serving(host: str, port: int, timeout: float = 10.0) -> Channel:
    """Poll the health service until the app reports SERVING; return an open channel to it."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        channel = AppChannel(host, port)
        try:
            reply = await HealthStub(channel).Check(HealthCheckRequest(service=""), timeout=2.0)
            if reply.status == HealthCheckResponse.SERVING:
                return channel
        except (OSError, StreamTerminatedError, GRPCError, TimeoutError) as exc:
            last_error = exc
        channel.close()
        await asyncio.sleep(0.05)
    raise GRPCError(
        Status.UNAVAILABLE, f"app at {host}:{port} did not become healthy in {timeout:.0f} s: {last_error}"
    )


class _AppClient:
    def __init__(self, channel: Channel, timeout: float = CALL_TIMEOUT_S) -> None:
        self.channel = channel
        self.timeout = timeout
        self._address = f"{channel._host}:{channel._port}"

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except TimeoutError as exc:
            raise GRPCError(
                Status.DEADLINE_EXCEEDED, f"app at {self._address} did not answer in time"
            ) from exc
        except (OSError, StreamTerminatedError) as exc:
            raise GRPCError(Status.UNAVAILABLE, f"app at {self._address} is unreachable: {exc}") from exc

    def close(self) -> None:
        self.channel.close()


class RequestorAppClient(_AppClient):
    """Typed calls to an app's RequestorApp service, and batches of them through its RequestorAppBatch
    service where the app serves it (else through the single calls: see `batches`)."""

    def __init__(self, channel: Channel, timeout: float = CALL_TIMEOUT_S) -> None:
        super().__init__(channel, timeout)
        self._stub = RequestorAppStub(channel)
        self._batch_stub = RequestorAppBatchStub(channel)
        self.batches = True
        """False once the app answered a batch call UNIMPLEMENTED: batches go as single calls from then on."""

    async def create_task(self, task_id: str, max_subtasks_count: int, params: JsonDict) -> CreatedTask:
        request = pb.CreateTaskRequest(
            task_id=task_id, max_subtasks_count=max_subtasks_count, task_params_json=json.dumps(params)
        )
        reply = await self._call(self._stub.CreateTask(request, timeout=self.timeout))
        return CreatedTask(
            env_id=reply.env_id,
            prerequisites=json.loads(reply.prerequisites_json or "{}"),
            min_memory_mib=reply.inf_requirements.min_memory_mib,
        )

    async def next_subtask(self, task_id: str, subtask_id: str, opaque_node_id: str = "") -> Subtask | None:
        request = pb.NextSubtaskRequest(task_id=task_id, subtask_id=subtask_id, opaque_node_id=opaque_node_id)
        return _subtask(await self._call(self._stub.NextSubtask(request, timeout=self.timeout)))

    async def next_subtasks(self, task_id: str, asks: Sequence[tuple[str, str]]) -> list[Subtask | None]:
        """NextSubtask for each `(subtask_id, opaque_node_id)` in `asks`, in order, in one call (one per
        MAX_BATCH asks) where the app serves batches. An error leaves the asks before the failing one in
        effect (docs/protocol.md)."""
        subtasks, _ = await self.next_subtasks_with_pending(task_id, asks)
        return subtasks

    async def next_subtasks_with_pending(
        self, task_id: str, asks: Sequence[tuple[str, str]]
    ) -> tuple[list[Subtask | None], bool | None]:
        """`next_subtasks`, and whether the task has pending subtasks right after them (None when the app
        does not serve batches and so did not say: ask `has_pending_subtasks`)."""
        _check_batch("asks", [subtask_id for subtask_id, _ in asks])
        subtasks: list[Subtask | None] = []
        pending: bool | None = None
        for chunk in _chunks(asks):
            reply = None
            if self.batches:
                request = pb.NextSubtasksRequest(
                    task_id=task_id,
                    asks=[pb.SubtaskAsk(subtask_id=sid, opaque_node_id=node) for sid, node in chunk],
                )
                reply = await self._batch_call(self._batch_stub.NextSubtasks(request, timeout=self.timeout))
            if reply is None:
                subtasks += [await self.next_subtask(task_id, sid, node) for sid, node in chunk]
                pending = None
                continue
            self._check_count("NextSubtasks", len(chunk), len(reply.replies))
            subtasks += [_subtask(one) for one in reply.replies]
            pending = reply.has_pending_subtasks
        return subtasks, pending

    async def verify_batch(
        self, task_id: str, subtask_ids: Sequence[str]
    ) -> list[tuple[VerifyResult, str, dict[str, str]]]:
        """`verify_with_info` for each of `subtask_ids`, in order, in one call (one per MAX_BATCH ids) where
        the app serves batches. An error leaves the ids before the failing one verified (docs/protocol.md)."""
        _check_batch("subtask_ids", subtask_ids)
        verdicts: list[tuple[VerifyResult, str, dict[str, str]]] = []
        for chunk in _chunks(subtask_ids):
            reply = None
            if self.batches:
                request = pb.VerifyBatchRequest(task_id=task_id, subtask_ids=chunk)
                reply = await self._batch_call(self._batch_stub.VerifyBatch(request, timeout=self.timeout))
            if reply is None:
                verdicts += [await self.verify_with_info(task_id, subtask_id) for subtask_id in chunk]
                continue
            self._check_count("VerifyBatch", len(chunk), len(reply.verdicts))
            verdicts += [
                (VerifyResult(one.reply.result), one.reply.reason, checked(one.result_info))
                for one in reply.verdicts
            ]
        return verdicts

    async def _batch_call(self, call: Awaitable[T]) -> T | None:
        """The batch call's reply; None (and no more batch calls) if the app answers UNIMPLEMENTED."""
        try:
            return await self._call(call)
        except GRPCError as exc:
            if exc.status is not Status.UNIMPLEMENTED:
                raise
            self.batches = False
            return None

    def _check_count(self, method: str, asked: int, answered: int) -> None:
        if answered != asked:
            raise GRPCError(
                Status.INTERNAL, f"app at {self._address} answered {method} of {asked} ids with {answered}"
            )

    async def verify(self, task_id: str, subtask_id: str) -> tuple[VerifyResult, str]:
        verdict, reason, _ = await self.verify_with_info(task_id, subtask_id)
        return verdict, reason

    async def verify_with_info(
        self, task_id: str, subtask_id: str
    ) -> tuple[VerifyResult, str, dict[str, str]]:
        """Verify, and the facts the app reported about the result (apps/sdk/result_info.py; {} if none)."""
        request = pb.VerifyRequest(task_id=task_id, subtask_id=subtask_id)

        async def call() -> tuple[pb.VerifyReply, str | None]:
            async with self._stub.Verify.open(timeout=self.timeout) as stream:
                await stream.send_message(request, end=True)
                reply = await stream.recv_message()
            assert reply is not None
            trailers = stream.trailing_metadata
            value = trailers.get(RESULT_INFO_KEY) if trailers is not None else None
            return reply, value if isinstance(value, str) else None

        reply, info = await self._call(call())
        return VerifyResult(reply.result), reply.reason, decode(info)

    async def discard_subtasks(self, task_id: str, subtask_ids: list[str]) -> list[str]:
        request = pb.DiscardSubtasksRequest(task_id=task_id, subtask_ids=subtask_ids)
        reply = await self._call(self._stub.DiscardSubtasks(request, timeout=self.timeout))
        return list(reply.discarded_subtask_ids)

    async def run_benchmark(self) -> float:
        reply = await self._call(self._stub.RunBenchmark(pb.RunBenchmarkRequest(), timeout=self.timeout))
        return reply.score

    async def has_pending_subtasks(self, task_id: str) -> bool:
        request = pb.HasPendingSubtasksRequest(task_id=task_id)
        reply = await self._call(self._stub.HasPendingSubtasks(request, timeout=self.timeout))
        return reply.has_pending_subtasks

    async def abort_task(self, task_id: str) -> None:
        await self._call(self._stub.AbortTask(pb.AbortTaskRequest(task_id=task_id), timeout=self.timeout))

    async def abort_subtask(self, task_id: str, subtask_id: str) -> None:
        request = pb.AbortSubtaskRequest(task_id=task_id, subtask_id=subtask_id)
        await self._call(self._stub.AbortSubtask(request, timeout=self.timeout))

    async def shutdown(self) -> None:
        await self._call(self._stub.Shutdown(pb.ShutdownRequest(), timeout=self.timeout))


def _check_batch(field: str, subtask_ids: Sequence[str]) -> None:
    """Refuse a batch as an app serving batches would (INVALID_ARGUMENT), whether or not this one does; one
    longer than an app takes goes in several calls."""
    try:
        check_batch(field, subtask_ids, limit=None)
    except InvalidArgument as exc:
        raise GRPCError(Status.INVALID_ARGUMENT, exc.message) from exc


def _chunks(items: Sequence[U]) -> list[Sequence[U]]:
    """`items` in consecutive pieces of at most MAX_BATCH, the most one batch call may carry."""
    return [items[first : first + MAX_BATCH] for first in range(0, len(items), MAX_BATCH)]


def _subtask(reply: pb.NextSubtaskReply) -> Subtask | None:
    if not reply.HasField("subtask"):
        return None
    return Subtask(
        params=json.loads(reply.subtask.subtask_params_json), resources=list(reply.subtask.resources)
    )


class ProviderAppClient(_AppClient):
    """Typed calls to an app's ProviderApp service."""

    def __init__(self, channel: Channel, timeout: float = CALL_TIMEOUT_S) -> None:
        super().__init__(channel, timeout)
        self._stub = ProviderAppStub(channel)

    async def compute(self, task_id: str, subtask_id: str, params: JsonDict) -> Path:
        request = pb.ComputeRequest(
            task_id=task_id, subtask_id=subtask_id, subtask_params_json=json.dumps(params)
        )
        reply = await self._call(self._stub.Compute(request, timeout=self.timeout))
        return Path(reply.output_filepath)

    async def run_benchmark(self) -> float:
        reply = await self._call(self._stub.RunBenchmark(pb.RunBenchmarkRequest(), timeout=self.timeout))
        return reply.score

    async def shutdown(self) -> None:
        await self._call(self._stub.Shutdown(pb.ShutdownRequest(), timeout=self.timeout))
