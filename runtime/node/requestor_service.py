"""The requestor's gRPC face: the node protocol for providers, the control API for the CLI, token checks."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from google.protobuf.message import Message
from grpclib.const import Status
from grpclib.events import RecvMessage, RecvRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.health.service import Health
from grpclib.protocol import H2Protocol
from grpclib.server import Server, Stream

from apps.sdk.wire_limits import MAX_MESSAGE_BYTES, BoundedProtocol, BoundedServer, short_message
from protos import node_pb2 as npb
from protos.node_grpc import ControlBase, RequestorBase
from runtime.node.connections import ConnectionGuard, ConnectionLimits, GuardedProtocol, within_stall_limit
from runtime.node.errors import (
    AppRefused,
    AppUnavailable,
    BadRequest,
    Duplicate,
    NodeError,
    NotFound,
    TooLarge,
    WrongState,
)
from runtime.node.identity import authenticated_provider, require_signed_calls
from runtime.node.market import ProviderOffer
from runtime.node.metrics import BYTES
from runtime.node.requestor import RequestorNode
from runtime.node.resources import read_chunks
from runtime.node.states import IllegalTransition

log = logging.getLogger(__name__)

REQUESTOR_PREFIX = "/taskapi.node.Requestor/"
CONTROL_PREFIX = "/taskapi.node.Control/"
HEALTH_PREFIX = "/grpc.health.v1.Health/"
TOKEN_REFUSED = "missing or wrong token"
"""The message of a refused token (providers tell it apart from a refused signature)."""


STATUSES: tuple[tuple[type[NodeError], Status], ...] = (
    (NotFound, Status.NOT_FOUND),
    (TooLarge, Status.RESOURCE_EXHAUSTED),
    (BadRequest, Status.INVALID_ARGUMENT),
    (WrongState, Status.FAILED_PRECONDITION),
    (Duplicate, Status.ALREADY_EXISTS),
    (AppUnavailable, Status.UNAVAILABLE),
)
"""The gRPC status of each kind of node refusal (errors.py), most specific first."""


def status_of(error: NodeError) -> Status:
    """The status a node refusal is answered with; an app's refusal keeps the app's own status."""
    if isinstance(error, AppRefused):
        return Status[error.app_status]
    return next((status for kind, status in STATUSES if isinstance(error, kind)), Status.UNKNOWN)


_REFUSALS = (NodeError, IllegalTransition, ValueError)
"""What the node raises for a request it will not carry out (answered as `_refusal` says)."""


def _refusal(error: Exception) -> GRPCError:
    """How a node refusal is answered: with its gRPC status; a state change that lost a race (the subtask or
    task moved on meanwhile) with FAILED_PRECONDITION, and a malformed id with INVALID_ARGUMENT."""
    if isinstance(error, NodeError):
        return GRPCError(status_of(error), short_message(error.message))
    if isinstance(error, IllegalTransition):
        return GRPCError(Status.FAILED_PRECONDITION, short_message(str(error)))
    return GRPCError(Status.INVALID_ARGUMENT, short_message(str(error)))


@contextmanager
def _node_errors() -> Iterator[None]:
    """Answer a node refusal with its gRPC error (`_refusal`)."""
    try:
        yield
    except _REFUSALS as exc:
        raise _refusal(exc) from exc


def _not_taken(subtask_id: str, error: Exception) -> npb.SubmitVerdict:
    """The verdict on a result of a SubmitResults call that the node refused: the status and message its
    SubmitResult call would have failed with."""
    refused = _refusal(error)
    return npb.SubmitVerdict(subtask_id=subtask_id, status=refused.status.value, reason=refused.message or "")


class ResultParts:
    """The parts of a SubmitResults stream, read as results: each header, then that result's data parts up to
    its announced size (so a result is complete without waiting for the part after it)."""

    def __init__(self, receive: Callable[[], Awaitable[npb.ResultPart | None]]) -> None:
        self._receive = receive
        self._ahead: npb.ResultPart | None = None
        """A part read while looking for a result's data: the next header, come early."""
        self._ended = False
        self._left = 0
        """Bytes of the current result's announced size not read yet."""

    async def _next(self) -> npb.ResultPart | None:
        part, self._ahead = self._ahead, None
        if part is None and not self._ended:
            part = await self._receive()
            self._ended = part is None
        return part

    async def headers(self) -> AsyncIterator[npb.ResultHeader]:
        """Each result's header, in order; whatever the previous result's reader left of its data is skipped.
        INVALID_ARGUMENT if the stream does not start with a header, or a result's data go past its size."""
        part = await self._next()
        if part is None or part.WhichOneof("part") != "header":
            raise GRPCError(Status.INVALID_ARGUMENT, "SubmitResults must start with a header")
        while part is not None:
            header = part.header
            self._left = header.size
            yield header
            async for _ in self.data():
                pass
            part = await self._next()
            if part is not None and part.WhichOneof("part") != "header":
                problem = "data past" if part.WhichOneof("part") == "data" else "a part of no kind after"
                raise GRPCError(
                    Status.INVALID_ARGUMENT,
                    f"{problem} the {header.size} bytes announced for subtask {header.subtask_id!r}",
                )

    async def data(self) -> AsyncIterator[bytes]:
        """The current result's data parts, until its announced size is reached or another part comes."""
        while self._left > 0 and (part := await self._next()) is not None:
            if part.WhichOneof("part") != "data":
                self._ahead = part
                return
            self._left -= len(part.data)
            yield part.data


class RequestorService(RequestorBase):
    """Node protocol: what providers call. Each call is signed by its provider's key (identity.py); a
    message naming another provider than the signer is PERMISSION_DENIED."""

    def __init__(self, node: RequestorNode, stall_s: float = ConnectionLimits.stall_s) -> None:
        self.node = node
        self.stall_s = stall_s

    async def Join(self, stream: Stream[npb.JoinRequest, npb.JoinReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        offer = request.offer
        provider_id = authenticated_provider(offer.provider_id)
        with _node_errors():
            provider_offer = ProviderOffer.checked(
                provider_id,
                [(env.env_id, env.benchmark_score) for env in offer.envs],
                offer.price,
                offer.capacity,
                offer.memory_mib,
                offer.queue,
            )
            reply = self.node.join(provider_offer)
        await stream.send_message(reply)

    async def RequestWork(self, stream: Stream[npb.WorkRequest, npb.WorkReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            assignments = await self.node.request_work(
                authenticated_provider(request.provider_id), request.slots, request.wait_ms
            )
        await stream.send_message(npb.WorkReply(assignments=assignments))

    async def Heartbeat(self, stream: Stream[npb.HeartbeatRequest, npb.HeartbeatReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            reply = self.node.heartbeat(
                authenticated_provider(request.provider_id), list(request.subtask_ids)
            )
        await stream.send_message(reply)

    async def FetchResource(self, stream: Stream[npb.FetchRequest, npb.Chunk]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            resource = self.node.open_resource(request.sha256)
        with resource:
            for block in read_chunks(resource):
                await within_stall_limit(
                    stream.send_message(npb.Chunk(data=block)), self.stall_s, "FetchResource"
                )
                BYTES.labels("resources").inc(len(block))

    async def SubmitResult(self, stream: Stream[npb.ResultPart, npb.SubmitReply]) -> None:
        first = await stream.recv_message()
        if first is None or first.WhichOneof("part") != "header":
            raise GRPCError(Status.INVALID_ARGUMENT, "SubmitResult must start with a header")
        first.header.provider_id = authenticated_provider(first.header.provider_id)

        async def data() -> AsyncIterator[bytes]:
            while part := await within_stall_limit(stream.recv_message(), self.stall_s, "SubmitResult"):
                if part.WhichOneof("part") != "data":
                    raise GRPCError(Status.INVALID_ARGUMENT, "only data may follow the header")
                yield part.data

        with _node_errors():
            reply = await self.node.submit_result(first.header, data())
        await stream.send_message(reply)

    async def SubmitResults(self, stream: Stream[npb.ResultPart, npb.SubmitVerdict]) -> None:
        """Results one after another, each received as SubmitResult receives one; a verdict each, sent as
        it is judged. A result the node refuses gets its refusal as its verdict and the next one is read;
        the call itself fails only for what spoils the stream (a header naming another provider, malformed
        parts, a stall). The provider may keep the call open for results yet to come: it may be quiet while
        one of the call's verdicts is pending, and the stall limit counts from when none is."""
        answers: list[asyncio.Task[None]] = []
        pending: set[asyncio.Task[None]] = set()  # the answers not done: no scan of a long call's `answers`

        async def receive() -> npb.ResultPart | None:
            part = asyncio.ensure_future(stream.recv_message())
            try:
                while not part.done() and pending:
                    await asyncio.wait([part, *pending], return_when=asyncio.FIRST_COMPLETED)
                return await within_stall_limit(part, self.stall_s, "SubmitResults")
            finally:
                part.cancel()

        parts = ResultParts(receive)
        sending = asyncio.Lock()

        async def send(verdict: npb.SubmitVerdict) -> None:
            async with sending:
                await within_stall_limit(stream.send_message(verdict), self.stall_s, "SubmitResults")

        async def answer(subtask_id: str, judgement: asyncio.Future[tuple[str, str]]) -> None:
            try:
                verdict, reason = await asyncio.shield(judgement)
            except _REFUSALS as exc:
                await send(_not_taken(subtask_id, exc))
            else:
                await send(npb.SubmitVerdict(subtask_id=subtask_id, verdict=verdict, reason=reason))

        try:
            async for header in parts.headers():
                header.provider_id = authenticated_provider(header.provider_id)
                try:
                    judgement = await self.node.receive_result(header, parts.data())
                except _REFUSALS as exc:
                    await send(_not_taken(header.subtask_id, exc))
                    continue
                answering = asyncio.create_task(answer(header.subtask_id, judgement))
                answers.append(answering)
                pending.add(answering)
                answering.add_done_callback(pending.discard)
            await asyncio.gather(*answers)
        finally:
            for task in answers:
                task.cancel()

    async def ReportFailure(self, stream: Stream[npb.FailureReport, npb.FailureReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            await self.node.report_failure(
                authenticated_provider(request.provider_id), request.subtask_id, request.reason
            )
        await stream.send_message(npb.FailureReply())

    async def Leave(self, stream: Stream[npb.LeaveRequest, npb.LeaveReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            await self.node.leave(authenticated_provider(request.provider_id))
        await stream.send_message(npb.LeaveReply())


class ControlService(ControlBase):
    """Control API: what `taskapi task submit|status|abort` calls."""

    def __init__(self, node: RequestorNode) -> None:
        self.node = node

    async def SubmitTask(self, stream: Stream[npb.SubmitTaskRequest, npb.SubmitTaskReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        try:
            params = json.loads(request.task_params_json or "{}")
        except json.JSONDecodeError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, f"task_params_json is not valid JSON: {exc}") from exc
        with _node_errors():
            task_id = await self.node.submit_task(
                request.app,
                request.env_id or None,
                params,
                request.max_subtasks or 10_000,
                list(request.input_ids),
            )
        await stream.send_message(npb.SubmitTaskReply(task_id=task_id))

    async def UploadInput(self, stream: Stream[npb.InputPart, npb.UploadInputReply]) -> None:
        first = await stream.recv_message()
        if first is None or first.WhichOneof("part") != "header":
            raise GRPCError(Status.INVALID_ARGUMENT, "UploadInput must start with a header")
        header = first.header

        async def data() -> AsyncIterator[bytes]:
            while part := await stream.recv_message():
                if part.WhichOneof("part") != "data":
                    raise GRPCError(Status.INVALID_ARGUMENT, "only data may follow the header")
                yield part.data

        with _node_errors():
            input_id = await self.node.receive_input(header.name, header.size, header.sha256, data())
        await stream.send_message(npb.UploadInputReply(input_id=input_id))

    async def GetTask(self, stream: Stream[npb.GetTaskRequest, npb.TaskStatus]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            status = self.node.task_status(request.task_id)
        await stream.send_message(status)

    async def AbortTask(self, stream: Stream[npb.ControlAbortRequest, npb.ControlAbortReply]) -> None:
        request = await stream.recv_message()
        assert request is not None
        with _node_errors():
            await self.node.abort_task(request.task_id)
        await stream.send_message(npb.ControlAbortReply())


MAX_ID_CHARS = 256
"""The longest id (of a provider, task, subtask or resource) a request may carry."""


def _id_fields(message: Message) -> Iterator[tuple[str, str]]:
    """Every id in `message` and the messages inside it: fields named `*_id`, `*_ids` or `sha256`."""
    for field, value in message.ListFields():
        items = [value] if isinstance(value, (Message, str, bytes, int, float)) else list(value)
        for item in items:
            if isinstance(item, Message):
                yield from _id_fields(item)
            elif isinstance(item, str) and (field.name.endswith(("_id", "_ids")) or field.name == "sha256"):
                yield field.name, item


async def _refuse_long_ids(event: RecvMessage) -> None:
    """INVALID_ARGUMENT for a request carrying an id over MAX_ID_CHARS, before any handler sees it."""
    for name, value in _id_fields(event.message):
        if len(value) > MAX_ID_CHARS:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"{name} is {len(value)} characters long; at most {MAX_ID_CHARS} are allowed",
            )


SMALL_MESSAGE_BYTES = 64 * 1024
"""The largest request of a call that carries only ids, an offer, a reason or task parameters."""

REQUEST_LIMITS: dict[str, int] = {
    REQUESTOR_PREFIX + "Join": SMALL_MESSAGE_BYTES,
    REQUESTOR_PREFIX + "RequestWork": SMALL_MESSAGE_BYTES,
    REQUESTOR_PREFIX + "Heartbeat": SMALL_MESSAGE_BYTES,
    REQUESTOR_PREFIX + "FetchResource": SMALL_MESSAGE_BYTES,
    REQUESTOR_PREFIX + "SubmitResult": MAX_MESSAGE_BYTES,  # a header, then parts of the result file
    REQUESTOR_PREFIX + "SubmitResults": MAX_MESSAGE_BYTES,  # headers, each followed by parts of its file
    REQUESTOR_PREFIX + "ReportFailure": SMALL_MESSAGE_BYTES,
    REQUESTOR_PREFIX + "Leave": SMALL_MESSAGE_BYTES,
    # a task's parameters may be large (a --params file's values); only a control-token holder gets this far
    CONTROL_PREFIX + "SubmitTask": MAX_MESSAGE_BYTES,
    CONTROL_PREFIX + "GetTask": SMALL_MESSAGE_BYTES,
    CONTROL_PREFIX + "AbortTask": SMALL_MESSAGE_BYTES,
    CONTROL_PREFIX + "UploadInput": MAX_MESSAGE_BYTES,  # a header, then parts of the input file
}
"""The largest message the requestor's server takes, per method; anything else (health checks, unknown
methods) gets SMALL_MESSAGE_BYTES. Refused at the 5-byte length prefix: a flood of 600 KB ids, each
decoded before its id could be refused, doubled the control API's latency."""


def bearer(token: str) -> dict[str, str]:
    """The call metadata that authenticates with `token`."""
    return {"authorization": f"Bearer {token}"}


class RequestorServer(BoundedServer):
    """The requestor's gRPC server; once `close()` is called it serves nothing more, on any connection.

    Its connections are bounded by `limits` (count, per peer address, pre-auth and idle time; see
    runtime/node/connections.py); a call counts as authenticated once `guard.authenticated` hears of it.
    Each request message is bounded by its method's entry in REQUEST_LIMITS.

    grpclib's `Server.close()` stops accepting connections and cancels running calls, but connections it
    already accepted keep taking new calls, which would reach a node that is stopping (or stopped) behind a
    server that is meant to be shut. Here `close()` also makes every later call on them fail UNAVAILABLE
    ("the requestor is shutting down"), and `wait_closed()` then closes those connections, so a client's
    channel reconnects (to a restarted requestor, or fails to connect) instead of staying on a dead server.
    """

    def __init__(self, handlers: list[Any], limits: ConnectionLimits | None = None) -> None:
        super().__init__(handlers, max_message=SMALL_MESSAGE_BYTES, method_limits=REQUEST_LIMITS)
        self.shutting_down = False
        self.guard = ConnectionGuard(limits or ConnectionLimits())
        self._connections: weakref.WeakSet[H2Protocol] = weakref.WeakSet()
        listen(self, RecvRequest, self._refuse_when_shutting_down)
        listen(self, RecvMessage, _refuse_long_ids)

    def _protocol_factory(self) -> H2Protocol:
        bounded = super()._protocol_factory()
        assert isinstance(bounded, BoundedProtocol)
        protocol = GuardedProtocol(bounded, self.guard)
        self._connections.add(protocol)
        return protocol

    async def start(self, *args: Any, **kwargs: Any) -> None:
        await super().start(*args, **kwargs)
        self.guard.start()

    async def _refuse_when_shutting_down(self, event: RecvRequest) -> None:
        if self.shutting_down:
            raise GRPCError(Status.UNAVAILABLE, "the requestor is shutting down")

    def close(self) -> None:
        self.shutting_down = True
        self.guard.stop()
        super().close()

    async def wait_closed(self) -> None:
        await super().wait_closed()
        for protocol in list(self._connections):
            connection = getattr(protocol, "connection", None)  # set once the connection is made
            if connection is not None:
                connection.close()


def _authenticated(guard: ConnectionGuard) -> Callable[[RecvRequest], Coroutine[Any, Any, None]]:
    """A RecvRequest listener telling `guard` that a call of the node or control API passed authentication."""

    async def passed(event: RecvRequest) -> None:
        if not event.method_name.startswith(HEALTH_PREFIX):
            guard.authenticated(event.peer.addr())

    return passed


def require_tokens(server: Server, provider_token: str, control_token: str) -> None:
    """Refuse every call (UNAUTHENTICATED) whose bearer token is not the one for its service."""

    async def check(event: RecvRequest) -> None:
        if event.method_name.startswith(HEALTH_PREFIX):
            return
        expected = control_token if event.method_name.startswith(CONTROL_PREFIX) else provider_token
        given = str(event.metadata.get("authorization", ""))
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            log.warning("refused %s from %s: bad or missing token", event.method_name, event.peer.addr())
            raise GRPCError(Status.UNAUTHENTICATED, TOKEN_REFUSED)

    listen(server, RecvRequest, check)


async def serve_requestor(
    node: RequestorNode,
    host: str,
    port: int,
    *,
    provider_token: str,
    control_token: str,
    tls: ssl.SSLContext | None = None,
    limits: ConnectionLimits | None = None,
) -> tuple[RequestorServer, int]:
    """Start the requestor's gRPC server; returns it and its port (port 0: a free one is chosen).

    Stop it with `close()` then `await wait_closed()` before stopping the node: from `close()` on, calls on
    connections accepted earlier are refused UNAVAILABLE too (see `RequestorServer`).
    """
    limits = limits or ConnectionLimits()
    server = RequestorServer(
        [RequestorService(node, stall_s=limits.stall_s), ControlService(node), Health()], limits
    )
    require_tokens(server, provider_token, control_token)
    require_signed_calls(server)
    listen(server, RecvRequest, _authenticated(server.guard))  # last: hears only calls the checks let pass
    await server.start(host, port, ssl=tls)
    return server, port or _bound_port(server)


def _bound_port(server: Server) -> int:
    """The port a server started on port 0 listens on (the kernel chose it while binding: no race)."""
    listening = server._server  # grpclib keeps the asyncio server it started here
    assert isinstance(listening, asyncio.Server), "the server is not started"
    return int(listening.sockets[0].getsockname()[1])
