"""Hostile network peers against a real `taskapi requestor serve` process and a real SDK app server.

Issue 18, item 4: one message must not freeze or bloat the requestor. Oversize messages are refused
RESOURCE_EXHAUSTED before their bodies are read (64 KiB for calls of ids and parameters, 4 MiB for the parts
of an uploaded file); an id past 256 characters is refused INVALID_ARGUMENT
before any handler sees it; no error message echoes unbounded input (grpclib's HPACK encoding is
quadratic in a header's length). Connections are capped (in all, and per peer address), closed when they
make no authenticated call or sit idle, and an upload that stops moving is cancelled with its temporary
file removed. Through all of it the control API keeps answering.

Attackers dial from 127.0.0.2 (still loopback on Linux) so the per-address cap they hit is not the one of
the operator's own connections from 127.0.0.1. Waits are hang guards, never timing assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from google.protobuf.message import Message
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.channel import AppChannel
from apps.sdk.client import RequestorAppClient
from apps.sdk.errors import AppError
from apps.sdk.process import HOST, free_port
from apps.sdk.server import CallGate, RequestorAppService, serve
from apps.sdk.wire_limits import MAX_ERROR_CHARS, MAX_MESSAGE_BYTES
from protos import node_pb2 as npb
from runtime.node.requestor_service import MAX_ID_CHARS, REQUEST_LIMITS, SMALL_MESSAGE_BYTES
from tests.node.cluster import Cluster, Requestor, wait_until
from tests.node.wire import Control, RawProvider, Reply, ResultFile, honest_result
from tests.sdk.helpers import FailingRequestor

TASK = {"input": "net-sec", "difficulty": 12, "subtasks": 1}
ATTACKER = "127.0.0.2"
PER_PEER = 12
PREAUTH_S = 1.5
IDLE_S = 60.0  # above any pause of these tests: an idle close racing a client's next call would be noise
STALL_S = 1.5
OVERSIZE = MAX_MESSAGE_BYTES + 1024
PART_BYTES = 1024 * 1024
# Far over MAX_ID_CHARS, yet in a message under SMALL_MESSAGE_BYTES: the id check, not the size, refuses it.
LONG_ID = "i" * 60_000
# An error message we send is at most MAX_ERROR_CHARS plus a short note of how much was cut.
ERROR_BOUND = MAX_ERROR_CHARS + 100
# Hang guard for "the control API still answers": far above a quiet GetTask (a few ms), far below a stall.
ANSWER_GUARD_S = 5.0


@dataclass
class Target:
    cluster: Cluster
    requestor: Requestor
    provider: RawProvider
    control: Control

    @property
    def pid(self) -> int:
        return self.requestor.process.pid


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A requestor with small limits (so the tests see them act), a joined raw provider, a control client."""
    cluster = Cluster(tmp_path_factory.mktemp("network"))
    try:
        requestor = cluster.requestor(
            options=(
                "--max-connections-per-peer",
                str(PER_PEER),
                "--preauth-timeout",
                str(PREAUTH_S),
                "--idle-timeout",
                str(IDLE_S),
                "--stall-timeout",
                str(STALL_S),
            )
        )
        provider = requestor.raw_provider("net-provider")
        provider.join(envs=["local"]).value()
        control = requestor.control()
        yield Target(cluster, requestor, provider, control)
        provider.close()
        control.close()
    finally:
        cluster.close()
        print(cluster.logs())


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def assert_healthy(target: Target) -> None:
    """The requestor process runs and its control API answers, within a generous bound."""
    assert target.requestor.running, target.requestor.log_text()[-3000:]
    started = time.monotonic()
    reply = target.control.status("no-such-task")
    assert reply.status is Status.NOT_FOUND, reply
    assert time.monotonic() - started < ANSWER_GUARD_S, "the control API stalled"


def assert_short(reply: Reply[Any]) -> None:
    assert len(reply.details) <= ERROR_BOUND, f"{reply.status.name}: {len(reply.details)} characters echoed"


# --- oversize messages -------------------------------------------------------------------------------

Call = Callable[[Target], Reply[Any]]
Filled = Callable[[Target, str], Message]
"""A request of one method with `filler` in its one unbounded field."""

SMALL_REQUESTS: dict[str, tuple[str, Filled]] = {
    "Join": (
        "provider",
        lambda t, filler: npb.JoinRequest(
            offer=npb.Offer(provider_id=t.provider.provider_id, envs=[npb.EnvOffer(env_id=filler)])
        ),
    ),
    "RequestWork": ("provider", lambda t, filler: npb.WorkRequest(provider_id=filler, slots=1)),
    "Heartbeat": (
        "provider",
        lambda t, filler: npb.HeartbeatRequest(provider_id=t.provider.provider_id, subtask_ids=[filler]),
    ),
    "FetchResource": ("provider", lambda t, filler: npb.FetchRequest(sha256=filler)),
    "ReportFailure": (
        "provider",
        lambda t, filler: npb.FailureReport(
            provider_id=t.provider.provider_id, subtask_id="s", reason=filler
        ),
    ),
    "Leave": ("provider", lambda t, filler: npb.LeaveRequest(provider_id=filler)),
    "GetTask": ("control", lambda t, filler: npb.GetTaskRequest(task_id=filler)),
    "AbortTask": ("control", lambda t, filler: npb.ControlAbortRequest(task_id=filler)),
}
# streams of file parts, and SubmitTask: a task's parameters may be as large as a --params file
LARGE_REQUESTS = {"SubmitResult", "SubmitResults", "UploadInput", "SubmitTask"}


def of_size(target: Target, fill: Filled, size: int) -> Message:
    """The request `fill` makes whose encoding is exactly `size` bytes."""
    length = size
    for _ in range(4):  # the length prefix of the filler shrinks with it: converges in a step or two
        request = fill(target, "f" * length)
        if request.ByteSize() == size:
            return request
        length -= request.ByteSize() - size
    raise AssertionError(f"no filler gives a {size}-byte {type(request).__name__}")


def call_method(target: Target, method: str, service: str, request: Message) -> Reply[Any]:
    client = target.provider if service == "provider" else target.control
    call = getattr(client.stub, method)(request, metadata=client.metadata)
    return client.loop.call(call, method)


def test_every_method_has_a_message_limit() -> None:
    methods = [
        f"/taskapi.node.{service.name}/{method.name}"
        for service in npb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]

    assert sorted(REQUEST_LIMITS) == sorted(methods)
    for path, limit in REQUEST_LIMITS.items():
        method = path.rsplit("/", 1)[1]
        assert limit == (MAX_MESSAGE_BYTES if method in LARGE_REQUESTS else SMALL_MESSAGE_BYTES), path
        assert method in LARGE_REQUESTS or method in SMALL_REQUESTS, path


@pytest.mark.parametrize("method", list(SMALL_REQUESTS))
def test_a_small_call_over_its_limit_is_refused_before_it_is_read(target: Target, method: str) -> None:
    """One byte over SMALL_MESSAGE_BYTES is refused at the length prefix; at the limit it is read."""
    service, fill = SMALL_REQUESTS[method]
    over = call_method(target, method, service, of_size(target, fill, SMALL_MESSAGE_BYTES + 1))
    at = call_method(target, method, service, of_size(target, fill, SMALL_MESSAGE_BYTES))

    assert over.status is Status.RESOURCE_EXHAUSTED, over
    assert over.details == (
        f"message of {SMALL_MESSAGE_BYTES + 1} bytes is over the limit of {SMALL_MESSAGE_BYTES} bytes"
    )
    assert at.status is not Status.RESOURCE_EXHAUSTED, at
    assert_short(at)
    assert_healthy(target)


def test_a_result_part_of_a_mebibyte_is_taken(target: Target) -> None:
    assignment, task_id = take_one(target)
    try:
        data = b"r" * PART_BYTES
        reply = target.provider.submit(
            assignment.subtask_id, ResultFile("result.json", data, chunk_bytes=PART_BYTES)
        )

        assert reply.status is Status.OK, reply  # read and verified (a wrong result: its verdict is rejected)
        assert_healthy(target)
    finally:
        target.control.abort(task_id)


def test_an_input_part_of_a_mebibyte_is_taken(target: Target) -> None:
    control = target.control
    data = b"i" * PART_BYTES

    async def upload() -> npb.UploadInputReply | None:
        async with control.stub.UploadInput.open(metadata=control.metadata) as stream:
            header = npb.InputHeader(name="big.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest())
            await stream.send_message(npb.InputPart(header=header))
            await stream.send_message(npb.InputPart(data=data))
            await stream.end()
            return await stream.recv_message()

    reply = control.loop.call(upload(), "UploadInput")

    assert reply.status is Status.OK, reply
    uploaded = reply.value()
    assert uploaded is not None and uploaded.input_id
    assert_healthy(target)


def stream_windows(port: int, methods: list[str]) -> tuple[int, dict[str, int]]:
    """The stream window the requestor's settings announce, and how much it grew each method's stream by.

    Speaks HTTP/2 by hand (h2, grpclib's own): headers of one call per method, no token, no message."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    paths = {}
    for method in methods:
        stream_id = connection.get_next_available_stream_id()
        paths[stream_id] = method
        headers = [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", HOST)]
        connection.send_headers(
            stream_id, [*headers, ("content-type", "application/grpc"), ("te", "trailers")]
        )
    window, grown = 0, dict.fromkeys(methods, 0)
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(connection.data_to_send())
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (data := sock.recv(65536)):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    setting = event.changed_settings.get(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE)
                    window = setting.new_value if setting else window
                elif isinstance(event, h2.events.WindowUpdated) and event.stream_id in paths:
                    grown[paths[event.stream_id]] += event.delta
            sock.sendall(connection.data_to_send())
    return window, grown


def test_a_peer_may_send_one_message_of_its_method_before_it_is_read(target: Target) -> None:
    """A stream's window is its method's limit: a flood of big ids cannot push more than 64 KiB each."""
    small, streamed = "/taskapi.node.Control/GetTask", "/taskapi.node.Requestor/SubmitResult"
    window, grown = stream_windows(target.requestor.port, [small, streamed])

    assert window == SMALL_MESSAGE_BYTES + 5
    assert grown[small] == 0
    assert window + grown[streamed] == REQUEST_LIMITS[streamed]  # 4 MiB: grpclib's own window
    assert_healthy(target)


def test_a_huge_message_does_not_grow_the_requestor(target: Target) -> None:
    """A 256 MiB message (the 300 MB data part took the requestor to 1 GB RSS) is refused unread."""
    before = rss_bytes(target.pid)
    control = target.control
    request = npb.SubmitTaskRequest(app="tutorialapp", task_params_json="x" * (256 * 1024 * 1024))
    reply = control.loop.call(control.stub.SubmitTask(request, metadata=control.metadata), "SubmitTask")

    assert reply.status is Status.RESOURCE_EXHAUSTED, reply
    grown = rss_bytes(target.pid) - before
    assert grown < 32 * 1024 * 1024, f"the requestor grew by {grown} bytes"
    assert_healthy(target)


def test_an_oversize_result_part_is_refused_and_leaves_no_file(target: Target) -> None:
    assignment, task_id = take_one(target)
    try:
        data = b"r" * OVERSIZE
        reply = target.provider.submit(
            assignment.subtask_id, ResultFile("result.json", data, chunk_bytes=OVERSIZE)
        )

        assert reply.status is Status.RESOURCE_EXHAUSTED, reply
        wait_until(lambda: not partial_files(target), "the partial upload being removed")
        assert_healthy(target)
    finally:
        target.control.abort(task_id)


# --- long ids and echoed errors ----------------------------------------------------------------------


def _long_get_task(target: Target) -> Reply[Any]:
    return target.control.status(LONG_ID)


def _long_abort(target: Target) -> Reply[Any]:
    return target.control.abort(LONG_ID)


def _long_heartbeat(target: Target) -> Reply[Any]:
    return target.provider.heartbeat([LONG_ID])


def _long_fetch(target: Target) -> Reply[Any]:
    return target.provider.fetch(LONG_ID)


def _long_failure(target: Target) -> Reply[Any]:
    return target.provider.report_failure(LONG_ID, "a reason")


def _long_submit_env(target: Target) -> Reply[Any]:
    control = target.control
    request = npb.SubmitTaskRequest(app="tutorialapp", env_id=LONG_ID, task_params_json="{}")
    return control.loop.call(control.stub.SubmitTask(request, metadata=control.metadata), "SubmitTask")


LONG_ID_CALLS: dict[str, tuple[Call, str]] = {
    "GetTask task_id": (_long_get_task, "task_id"),
    "AbortTask task_id": (_long_abort, "task_id"),
    "Heartbeat subtask_ids": (_long_heartbeat, "subtask_ids"),
    "FetchResource sha256": (_long_fetch, "sha256"),
    "ReportFailure subtask_id": (_long_failure, "subtask_id"),
    "SubmitTask env_id": (_long_submit_env, "env_id"),
}


@pytest.mark.parametrize("call, field", LONG_ID_CALLS.values(), ids=list(LONG_ID_CALLS))
def test_a_long_id_is_refused_early_without_echoing_it(target: Target, call: Call, field: str) -> None:
    reply = call(target)

    assert reply.status is Status.INVALID_ARGUMENT, reply.status
    assert reply.details == f"{field} is {len(LONG_ID)} characters long; at most {MAX_ID_CHARS} are allowed"
    assert_healthy(target)


def _unknown_app(target: Target) -> Reply[Any]:
    return target.control.submit("a" * 60_000, "local", {})


def _unknown_parameter(target: Target) -> Reply[Any]:
    return target.control.submit("tutorialapp", "local", {**TASK, "p" * 60_000: 1})


def _bad_parameter_value(target: Target) -> Reply[Any]:
    return target.control.submit("tutorialapp", "local", {**TASK, "difficulty": "d" * 60_000})


ECHOING_CALLS: dict[str, Call] = {
    "unknown app name": _unknown_app,
    "unknown task parameter": _unknown_parameter,
    "bad parameter value": _bad_parameter_value,
}


@pytest.mark.parametrize("call", ECHOING_CALLS.values(), ids=list(ECHOING_CALLS))
def test_an_error_never_echoes_unbounded_input(target: Target, call: Call) -> None:
    reply = call(target)

    assert reply.status is not Status.OK, reply
    assert_short(reply)
    assert "more characters cut" in reply.details, reply.details
    assert_healthy(target)


def test_an_app_server_cuts_its_error_messages_and_refuses_oversize_requests(tmp_path: Path) -> None:
    """The SDK server (also what serves wasm apps): an app error of 600 KB reaches the node cut short."""

    async def scenario() -> tuple[tuple[Status, int], Status]:
        handler = FailingRequestor(fail_in="run_benchmark", error=AppError("e" * 600_000))
        gate, port = CallGate(), free_port()
        serving = asyncio.create_task(serve(RequestorAppService(tmp_path, handler, gate), gate, HOST, port))
        client = RequestorAppClient(AppChannel(HOST, port))
        try:
            await asyncio.sleep(0.5)
            benchmark = await outcome(client.run_benchmark())
            oversize = await outcome(client.create_task("t1", 1, {"x": "y" * OVERSIZE}))
            return (benchmark[0], len(benchmark[1])), oversize[0]
        finally:
            client.close()
            gate.request_shutdown()
            await serving

    (status, length), oversize = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert status is Status.INTERNAL
    assert length <= ERROR_BOUND
    assert oversize is Status.RESOURCE_EXHAUSTED


async def outcome(call: Awaitable[object]) -> tuple[Status, str]:
    try:
        await call
    except GRPCError as exc:
        return exc.status, exc.message or ""
    return Status.OK, ""


# --- connections ------------------------------------------------------------------------------------


def take_one(target: Target) -> tuple[npb.Assignment, str]:
    """A fresh tutorialapp task and its one assignment, taken by the raw provider."""
    task_id = target.control.submit("tutorialapp", "local", TASK).value().task_id
    (assignment,) = target.provider.request_work(slots=1, wait_ms=30_000).value().assignments
    assert assignment.task_id == task_id
    return assignment, task_id


def partial_files(target: Target) -> list[Path]:
    return [path for path in target.requestor.data_dir.rglob("*") if "partial" in path.name]


@contextlib.contextmanager
def idle_sockets(count: int, port: int, source: str = ATTACKER) -> Iterator[list[socket.socket]]:
    """`count` TCP connections to the requestor from `source` that never send a byte."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((source, 0))
            sock.settimeout(10)
            with contextlib.suppress(OSError):
                sock.connect((HOST, port))
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (anything it sent first is read and dropped)."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def connection_of(control: Control) -> Callable[[], bool]:
    """Whether the connection a control client's last call went over is closed (grpclib's channel state,
    updated while the client's loop runs: each check runs it a moment)."""
    protocol = control._channel._protocol
    assert protocol is not None

    def closed() -> bool:
        control.loop.run(asyncio.sleep(0.05), "the client's loop")
        return bool(protocol.handler.connection_lost)  # type: ignore[attr-defined]

    return closed


def test_idle_connections_are_capped_per_address_and_closed_before_authenticating(target: Target) -> None:
    baseline = open_files(target.pid)
    with idle_sockets(5 * PER_PEER, target.requestor.port) as sockets:
        time.sleep(0.3)
        assert open_files(target.pid) <= baseline + PER_PEER + 2, "connections past the cap were kept"
        assert_healthy(target)  # the operator's address has its own allowance
        refused = sum(closed_by_server(sock) for sock in sockets)
        assert refused >= 4 * PER_PEER, f"only {refused} of {len(sockets)} connections were refused"

        wait_until(lambda: all(closed_by_server(sock) for sock in sockets), "the admitted idle ones closing")
    target.requestor.wait_for_log(f"no authenticated call within {PREAUTH_S:g} s")
    assert_healthy(target)


def test_a_connection_whose_calls_fail_authentication_is_closed(target: Target) -> None:
    intruder = Control(target.cluster.loop, HOST, target.requestor.port, "a-wrong-token")
    try:
        first = intruder.status("any")
        assert first.status is Status.UNAUTHENTICATED, first
        closed = connection_of(intruder)

        def dropped() -> bool:
            intruder.status("any")  # keeps calling: activity without authentication does not count
            return closed()

        wait_until(dropped, "the server closing the unauthenticated connection")
    finally:
        intruder.close()
    assert_healthy(target)


def test_an_idle_authenticated_connection_is_closed(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        requestor = cluster.requestor(options=("--idle-timeout", "1"))
        control = requestor.control()
        assert control.status("idle-check").status is Status.NOT_FOUND
        wait_until(connection_of(control), "the idle connection closing")
        # A client whose connection was closed for idleness simply dials again.
        assert control.status("idle-check").status is Status.NOT_FOUND
        control.close()
        requestor.wait_for_log("idle for 1 s")
    finally:
        cluster.close()


async def _stalled_upload(provider: RawProvider, assignment: npb.Assignment) -> npb.SubmitReply | None:
    """Send a result's header and its first half, then stop sending (never ending the stream)."""
    data = honest_result(assignment.subtask_params_json)
    header = ResultFile("result.json", data).header(provider.provider_id, assignment.subtask_id)
    async with provider.stub.SubmitResult.open(metadata=provider.metadata) as stream:
        await stream.send_message(npb.ResultPart(header=header))
        await stream.send_message(npb.ResultPart(data=data[: len(data) // 2]))
        return await stream.recv_message()


def test_a_stalled_upload_is_cancelled_and_its_partial_file_removed(target: Target) -> None:
    assignment, task_id = take_one(target)
    try:
        reply = target.provider.loop.call(_stalled_upload(target.provider, assignment), "stalled upload")

        assert reply.status is Status.DEADLINE_EXCEEDED, reply
        assert reply.details == f"SubmitResult made no progress for {STALL_S:g} s; cancelled"
        assert not partial_files(target)
        assert_healthy(target)
    finally:
        target.control.abort(task_id)


def test_the_open_file_limit_is_raised_to_the_hard_limit(target: Target) -> None:
    limits = Path(f"/proc/{target.pid}/limits").read_text().splitlines()
    (line,) = [line for line in limits if line.startswith("Max open files")]
    soft, hard = line.split()[3:5]
    assert soft == hard, line


def test_the_control_api_answers_while_attacks_run(target: Target) -> None:
    """Idle connections past the cap, a stalled upload and a huge id at once; GetTask still answers."""
    assignment, task_id = take_one(target)
    loop = target.cluster.loop
    attacker = RawProvider(loop, HOST, target.requestor.port, target.requestor.token, "net-attacker")
    upload = loop.loop.create_task(_stalled_upload(target.provider, assignment))
    try:
        with idle_sockets(3 * PER_PEER, target.requestor.port):
            for _ in range(5):
                assert attacker.heartbeat([LONG_ID]).status is Status.INVALID_ARGUMENT
                assert_healthy(target)
                status = target.control.status(task_id)
                assert status.status is Status.OK, status
    finally:
        attacker.close()
        with contextlib.suppress(Exception):
            loop.run(upload, "stalled upload")
        target.control.abort(task_id)
