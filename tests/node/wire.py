"""A raw node-protocol client for tests: every RPC of the requestor, request fields in, `Reply` out.

Calls go through the generated stubs with `bearer(token)` metadata and signed with the provider's own
key (runtime/node/identity.py), exactly as a provider (or an attacker holding a provider token) would
make them. Each call returns a `Reply` with either the
reply message or the gRPC status of the refusal, so a test asserts on statuses, never on exceptions.
All calls run on one `Loop`: a test may serve an in-process requestor on the same loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from apps.tutorialapp import pow
from protos import node_pb2 as npb
from protos.node_grpc import ControlStub, RequestorStub
from runtime.node.identity import ProviderKey, sign_calls
from runtime.node.requestor_service import bearer

T = TypeVar("T")

# A guard against hangs, never a timing assertion: no call of these tests comes anywhere near it.
CALL_GUARD_S = 60.0


@dataclass(frozen=True)
class Reply(Generic[T]):
    """The outcome of one call: `status` OK with `message` set, or an error status and its text."""

    status: Status
    details: str = ""
    message: T | None = None

    def value(self) -> T:
        assert self.status is Status.OK and self.message is not None, f"{self.status.name}: {self.details}"
        return self.message


class Loop:
    """One event loop that runs one awaitable at a time to completion; background tasks run meanwhile."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, awaitable: Awaitable[T], what: str = "call") -> T:
        async def guarded() -> T:
            try:
                return await asyncio.wait_for(awaitable, CALL_GUARD_S)
            except TimeoutError:
                raise AssertionError(f"{what} did not finish within {CALL_GUARD_S:.0f} s (hang)") from None

        return self.loop.run_until_complete(guarded())

    def call(self, awaitable: Awaitable[T], what: str) -> Reply[T]:
        """Run one gRPC call; a refused or broken connection is UNAVAILABLE."""
        try:
            return Reply(Status.OK, message=self.run(awaitable, what))
        except GRPCError as exc:
            return Reply(exc.status, exc.message or "")
        except (OSError, StreamTerminatedError) as exc:
            return Reply(Status.UNAVAILABLE, f"unreachable: {exc}")

    def channel(self, host: str, port: int) -> Channel:
        """A channel bound to this loop (grpclib takes the loop that is running when it is made)."""

        async def make() -> Channel:
            return Channel(host, port)

        return self.run(make(), "channel")

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@dataclass(frozen=True)
class ResultFile:
    """What a provider sends as a result: a file name, its bytes, and what the header announces."""

    name: str
    data: bytes
    announced_size: int | None = None
    announced_sha256: str | None = None
    chunk_bytes: int = 64 * 1024

    def header(self, provider_id: str, subtask_id: str) -> npb.ResultHeader:
        return npb.ResultHeader(
            provider_id=provider_id,
            subtask_id=subtask_id,
            file_name=self.name,
            size=len(self.data) if self.announced_size is None else self.announced_size,
            sha256=self.announced_sha256 or hashlib.sha256(self.data).hexdigest(),
            usage=npb.Usage(wall_ms=1, cpu_ns=1_000_000),
        )


def named_key(name: str) -> ProviderKey:
    """A provider key derived from `name`: the same name gives the same key (and provider id) every run."""
    return ProviderKey(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest()))


class RawProvider:
    """One provider speaking the node protocol by hand over its own channel, signing with the key of `name`.

    Its messages name `claims` as their provider_id: by default its own id; an impostor names another's.
    """

    def __init__(
        self, loop: Loop, host: str, port: int, token: str, name: str, *, claims: str | None = None
    ) -> None:
        self.loop = loop
        self.key = named_key(name)
        self.provider_id = self.key.provider_id if claims is None else claims
        self.metadata = bearer(token)
        self._channel = loop.channel(host, port)
        sign_calls(self._channel, self.key)
        self.stub = RequestorStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def join(
        self,
        envs: Sequence[str] = ("local",),
        capacity: int = 1,
        price: float = 1.0,
        score: float = 1.0,
        queue: int = 0,
    ) -> Reply[npb.JoinReply]:
        offer = npb.Offer(
            provider_id=self.provider_id,
            envs=[npb.EnvOffer(env_id=env, benchmark_score=score) for env in envs],
            price=price,
            capacity=capacity,
            queue=queue,
        )
        request = npb.JoinRequest(offer=offer)
        return self.loop.call(self.stub.Join(request, metadata=self.metadata), "Join")

    def request_work(self, slots: int = 1, wait_ms: int = 0) -> Reply[npb.WorkReply]:
        request = npb.WorkRequest(provider_id=self.provider_id, slots=slots, wait_ms=wait_ms)
        return self.loop.call(self.stub.RequestWork(request, metadata=self.metadata), "RequestWork")

    def heartbeat(self, subtask_ids: Sequence[str]) -> Reply[npb.HeartbeatReply]:
        request = npb.HeartbeatRequest(provider_id=self.provider_id, subtask_ids=list(subtask_ids))
        return self.loop.call(self.stub.Heartbeat(request, metadata=self.metadata), "Heartbeat")

    def report_failure(self, subtask_id: str, reason: str) -> Reply[npb.FailureReply]:
        request = npb.FailureReport(provider_id=self.provider_id, subtask_id=subtask_id, reason=reason)
        return self.loop.call(self.stub.ReportFailure(request, metadata=self.metadata), "ReportFailure")

    def leave(self) -> Reply[npb.LeaveReply]:
        request = npb.LeaveRequest(provider_id=self.provider_id)
        return self.loop.call(self.stub.Leave(request, metadata=self.metadata), "Leave")

    def fetch(self, sha256: str) -> Reply[list[npb.Chunk]]:
        request = npb.FetchRequest(sha256=sha256)
        return self.loop.call(self.stub.FetchResource(request, metadata=self.metadata), "FetchResource")

    def submit(self, subtask_id: str, result: ResultFile) -> Reply[npb.SubmitReply]:
        return self.loop.call(self._submit(subtask_id, result), "SubmitResult")

    async def _submit(self, subtask_id: str, result: ResultFile) -> npb.SubmitReply:
        async with self.stub.SubmitResult.open(metadata=self.metadata) as stream:
            await stream.send_message(npb.ResultPart(header=result.header(self.provider_id, subtask_id)))
            for offset in range(0, len(result.data), result.chunk_bytes):
                chunk = result.data[offset : offset + result.chunk_bytes]
                await stream.send_message(npb.ResultPart(data=chunk))
            await stream.end()
            reply = await stream.recv_message()
        assert reply is not None
        return reply

    def submit_results(self, results: Sequence[tuple[str, ResultFile]]) -> Reply[list[npb.SubmitVerdict]]:
        """Several results in one SubmitResults call, in order: the verdicts, in the order they came."""
        return self.loop.call(self._submit_results(results), "SubmitResults")

    async def _submit_results(self, results: Sequence[tuple[str, ResultFile]]) -> list[npb.SubmitVerdict]:
        async with self.stub.SubmitResults.open(metadata=self.metadata) as stream:
            for subtask_id, result in results:
                await stream.send_message(npb.ResultPart(header=result.header(self.provider_id, subtask_id)))
                for offset in range(0, len(result.data), result.chunk_bytes):
                    chunk = result.data[offset : offset + result.chunk_bytes]
                    await stream.send_message(npb.ResultPart(data=chunk))
            await stream.end()
            return [verdict async for verdict in stream]


class Control:
    """The control API (`taskapi task ...`) over its own channel."""

    def __init__(self, loop: Loop, host: str, port: int, token: str) -> None:
        self.loop = loop
        self.metadata = bearer(token)
        self._channel = loop.channel(host, port)
        self.stub = ControlStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def submit(self, app: str, env: str, params: dict[str, object]) -> Reply[npb.SubmitTaskReply]:
        request = npb.SubmitTaskRequest(app=app, env_id=env, task_params_json=json.dumps(params))
        return self.loop.call(self.stub.SubmitTask(request, metadata=self.metadata), "SubmitTask")

    def status(self, task_id: str) -> Reply[npb.TaskStatus]:
        request = npb.GetTaskRequest(task_id=task_id)
        return self.loop.call(self.stub.GetTask(request, metadata=self.metadata), "GetTask")

    def abort(self, task_id: str) -> Reply[npb.ControlAbortReply]:
        request = npb.ControlAbortRequest(task_id=task_id)
        return self.loop.call(self.stub.AbortTask(request, metadata=self.metadata), "AbortTask")


def honest_result(params_json: str) -> bytes:
    """The result.json an honest tutorialapp provider writes for the range in `params_json`."""
    params = json.loads(params_json)
    text, difficulty, start, end = params["input"], params["difficulty"], params["start"], params["end"]
    nonce = pow.search(text, difficulty, start, end)
    claim = {
        "start": start,
        "end": end,
        "nonce": nonce,
        "hash": None if nonce is None else pow.digest(text, nonce).hex(),
    }
    return json.dumps(claim).encode()


def wrong_result(params_json: str) -> bytes:
    """A claim Verify must reject: the range's first nonce, which does not meet the difficulty."""
    params = json.loads(params_json)
    text, difficulty, start = params["input"], params["difficulty"], params["start"]
    assert not pow.meets(text, start, difficulty), "pick a task whose range starts hold no valid nonce"
    claim = {"start": start, "end": params["end"], "nonce": start, "hash": pow.digest(text, start).hex()}
    return json.dumps(claim).encode()
