"""Errors raised by app handlers reach the caller as a gRPC status with a readable message, never a hang."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from apps.sdk import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    JsonDict,
    NotFound,
    ProviderAppHandler,
    ProviderTaskDir,
    RequestorTaskDir,
    Unavailable,
)
from apps.sdk.client import ProviderAppClient, RequestorAppClient, wait_until_serving
from apps.sdk.process import HOST, AppProcess, free_port
from apps.sdk.server import CallGate, ProviderAppService, RequestorAppService, serve

from .helpers import FailingProvider, FailingRequestor, app_script, in_process

T = TypeVar("T")
HANG_GUARD_S = 60.0


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD_S))


async def status_of(call: Awaitable[object]) -> tuple[Status, str]:
    try:
        await call
    except GRPCError as exc:
        return exc.status, exc.message or ""
    return Status.OK, ""


# Each call reaches its handler once task "t1" exists and its subtask "s1" is assigned with results.
REQUESTOR_CALLS: dict[str, Callable[[RequestorAppClient], Awaitable[object]]] = {
    "create_task": lambda client: client.create_task("t2", 1, {}),
    "next_subtask": lambda client: client.next_subtask("t1", "s2"),
    "verify": lambda client: client.verify("t1", "s1"),
    "discard_subtasks": lambda client: client.discard_subtasks("t1", ["s1"]),
    "has_pending_subtasks": lambda client: client.has_pending_subtasks("t1"),
    "abort_task": lambda client: client.abort_task("t1"),
    "abort_subtask": lambda client: client.abort_subtask("t1", "s1"),
    "run_benchmark": lambda client: client.run_benchmark(),
}


async def prepare(client: RequestorAppClient, work_dir: Path) -> None:
    await client.create_task("t1", 4, {})
    assert await client.next_subtask("t1", "s1") is not None
    outputs = work_dir / "t1" / "subtask_outputs" / "s1"
    outputs.mkdir(parents=True)
    (outputs / "result.txt").write_text("42")


@pytest.mark.parametrize("method", list(REQUESTOR_CALLS))
@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            InvalidArgument("parameter 'x' must be positive"),
            Status.INVALID_ARGUMENT,
            "parameter 'x' must be positive",
        ),
        (RuntimeError("disk on fire"), Status.INTERNAL, "app error: RuntimeError: disk on fire"),
        (KeyError("plan"), Status.INTERNAL, "app error: KeyError: 'plan'"),
    ],
    ids=["app-error", "exception", "key-error"],
)
def test_requestor_handler_errors_reach_the_caller(
    tmp_path: Path, method: str, error: Exception, status: Status, message: str
) -> None:
    """... and the failed call changed nothing: once the handler recovers, the same call succeeds."""

    async def scenario() -> None:
        handler = FailingRequestor()
        gate = CallGate()
        async with in_process(RequestorAppService(tmp_path, handler, gate), gate) as channel:
            client = RequestorAppClient(channel)
            await prepare(client, tmp_path)
            handler.fail_in, handler.error = method, error
            assert await status_of(REQUESTOR_CALLS[method](client)) == (status, message)
            handler.error = None
            assert await status_of(REQUESTOR_CALLS[method](client)) == (Status.OK, "")

    run(scenario())


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidArgument("bad"), Status.INVALID_ARGUMENT),
        (NotFound("no such thing"), Status.NOT_FOUND),
        (AlreadyExists("twice"), Status.ALREADY_EXISTS),
        (FailedPrecondition("not now"), Status.FAILED_PRECONDITION),
        (Unavailable("going away"), Status.UNAVAILABLE),
        (GRPCError(Status.RESOURCE_EXHAUSTED, "out of memory"), Status.RESOURCE_EXHAUSTED),
    ],
)
def test_each_sdk_error_has_its_status(tmp_path: Path, error: Exception, status: Status) -> None:
    async def scenario() -> tuple[Status, str]:
        gate = CallGate()
        service = RequestorAppService(tmp_path, FailingRequestor("create_task", error), gate)
        async with in_process(service, gate) as channel:
            return await status_of(RequestorAppClient(channel).create_task("t1", 1, {}))

    got_status, got_message = run(scenario())
    assert got_status is status
    assert got_message == (error.message if isinstance(error, GRPCError) else str(error))


@pytest.mark.parametrize("single_call", [False, True], ids=["persistent", "single-call"])
@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            InvalidArgument("subtask parameter 'end' is missing"),
            Status.INVALID_ARGUMENT,
            "subtask parameter 'end' is missing",
        ),
        (
            ZeroDivisionError("division by zero"),
            Status.INTERNAL,
            "app error: ZeroDivisionError: division by zero",
        ),
    ],
    ids=["app-error", "exception"],
)
def test_provider_handler_errors_reach_the_caller(
    tmp_path: Path, single_call: bool, error: Exception, status: Status, message: str
) -> None:
    """In single-call mode a failed call ends the server too: one call per server, whatever its outcome."""

    async def scenario() -> None:
        gate = CallGate()
        service = ProviderAppService(tmp_path, FailingProvider(error), gate, single_call=single_call)
        async with in_process(service, gate) as channel:
            client = ProviderAppClient(channel)
            assert await status_of(client.compute("t1", "s1", {})) == (status, message)
            assert gate.shutdown_requested.is_set() is single_call
            expected = (Status.UNAVAILABLE, "the app is shutting down") if single_call else (status, message)
            assert await status_of(client.run_benchmark()) == expected

    run(scenario())


class OutputOutside(ProviderAppHandler):
    def __init__(self, output: Path) -> None:
        self.output = output

    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        (task_dir.root / "outside.txt").write_text("x")
        return self.output

    async def run_benchmark(self, work_dir: Path) -> float:
        return 1.0


@pytest.mark.parametrize("output", ["../escape.txt", "/etc/passwd", "s1/missing.txt", "s1"])
def test_compute_output_must_be_a_file_in_the_task_dir(tmp_path: Path, output: str) -> None:
    async def scenario() -> tuple[Status, str]:
        gate = CallGate()
        service = ProviderAppService(tmp_path / "task", OutputOutside(Path(output)), gate, single_call=False)
        async with in_process(service, gate) as channel:
            return await status_of(ProviderAppClient(channel).compute("t1", "s1", {}))

    status, message = run(scenario())
    assert status is Status.INTERNAL  # the app's bug, not a state the caller could fix
    assert output in message


class DiscardsTooMuch(FailingRequestor):
    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        return [*subtask_ids, "never-given"]


def test_an_app_discarding_subtasks_it_was_not_asked_to_is_an_internal_error(tmp_path: Path) -> None:
    async def scenario() -> tuple[Status, str]:
        gate = CallGate()
        async with in_process(RequestorAppService(tmp_path, DiscardsTooMuch(), gate), gate) as channel:
            client = RequestorAppClient(channel)
            await prepare(client, tmp_path)
            return await status_of(client.discard_subtasks("t1", ["s1"]))

    status, message = run(scenario())
    assert status is Status.INTERNAL and "never-given" in message


def test_an_app_process_that_dies_mid_call_gives_unavailable(tmp_path: Path) -> None:
    command = app_script(
        tmp_path,
        """
        if params.get("then") == "raise":
            raise RuntimeError(f"cannot compute {subtask_id}")
        os._exit(3)
        """,
    )

    async def scenario() -> None:
        process = AppProcess(command, "provider", tmp_path / "provider", persistent=True)
        client = ProviderAppClient(await process.start())
        try:
            raised = await status_of(client.compute("t1", "s1", {"then": "raise"}))
            assert raised == (Status.INTERNAL, "app error: RuntimeError: cannot compute s1")
            status, message = await status_of(client.compute("t1", "s2", {"then": "die"}))
            assert status is Status.UNAVAILABLE
            assert f"127.0.0.1:{process.port}" in message
            assert await process.wait(timeout=HANG_GUARD_S) == 3
        finally:
            client.close()
            await process.kill()

    run(scenario())


def test_the_client_maps_a_refused_connection_to_unavailable() -> None:
    async def scenario() -> tuple[Status, str]:
        port = free_port()
        client = RequestorAppClient(Channel(HOST, port))
        try:
            return await status_of(client.has_pending_subtasks("t1"))
        finally:
            client.close()

    status, message = run(scenario())
    assert status is Status.UNAVAILABLE
    assert "unreachable" in message


class SlowBenchmark(FailingRequestor):
    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def run_benchmark(self, work_dir: Path) -> float:
        self.started.set()
        await self.release.wait()
        return 7.0


def test_shutdown_drains_calls_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    async def scenario() -> None:
        handler, gate, port = SlowBenchmark(), CallGate(), free_port()
        serving = asyncio.create_task(serve(RequestorAppService(tmp_path, handler, gate), gate, HOST, port))
        channel = await wait_until_serving(HOST, port)
        client = RequestorAppClient(channel)
        try:
            in_flight = asyncio.create_task(client.run_benchmark())
            await handler.started.wait()
            await client.shutdown()
            health = await HealthStub(channel).Check(HealthCheckRequest(service=""))
            assert health.status == HealthCheckResponse.NOT_SERVING
            assert await status_of(client.create_task("t1", 1, {})) == (
                Status.UNAVAILABLE,
                "the app is shutting down",
            )
            handler.release.set()
            assert await in_flight == 7.0
            await serving
            assert (await status_of(client.run_benchmark()))[0] is Status.UNAVAILABLE
        finally:
            client.close()
            serving.cancel()

    run(scenario())
