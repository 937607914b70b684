"""RequestorAppClient's batch calls against an app that does not serve RequestorAppBatch: the first batch
call meets UNIMPLEMENTED and the client falls back to the single calls, for the rest of its life, with the
same replies and the same errors as those single calls. And a batch longer than an app takes in one call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server

from apps.sdk import Subtask, VerifyResult
from apps.sdk.batch import MAX_BATCH
from apps.sdk.channel import AppChannel
from apps.sdk.client import RequestorAppClient
from apps.sdk.process import HOST, free_port
from apps.sdk.server import CallGate, RequestorAppBatchService, RequestorAppService

from .helpers import FailingRequestor


@contextlib.asynccontextmanager
async def without_batches(work_dir: Path) -> AsyncIterator[RequestorAppClient]:
    """A client of an SDK server of FailingRequestor that serves RequestorApp alone, as an app built
    before RequestorAppBatch does; the client's channel is the node's (`AppChannel`)."""
    server = Server([RequestorAppService(work_dir, FailingRequestor(), CallGate())])
    port = free_port()
    await server.start(HOST, port)
    client = RequestorAppClient(AppChannel(HOST, port))
    try:
        yield client
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def deliver(work_dir: Path, task_id: str, subtask_id: str) -> None:
    outputs = work_dir / task_id / "subtask_outputs" / subtask_id
    outputs.mkdir(parents=True)
    (outputs / "result.txt").write_text("42")


def test_batches_fall_back_to_single_calls_once_and_for_good(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with without_batches(tmp_path) as client:
            await client.create_task("t1", 8, {})
            assert client.batches
            subtasks, pending = await client.next_subtasks_with_pending("t1", [("s1", "n1"), ("s2", "n2")])
            assert subtasks == [Subtask(params={"subtask": "s1"}), Subtask(params={"subtask": "s2"})]
            assert pending is None  # not said by an app that does not serve batches
            assert not client.batches
            assert await client.next_subtasks("t1", [("s3", "n1")]) == [Subtask(params={"subtask": "s3"})]
            for subtask_id in ("s1", "s2"):
                deliver(tmp_path, "t1", subtask_id)
            verdicts = await client.verify_batch("t1", ["s1", "s2"])
            assert verdicts == [(VerifyResult.SUCCESS, "", {}), (VerifyResult.SUCCESS, "", {})]

    asyncio.run(scenario())


def test_a_fallen_back_batch_fails_as_its_single_call_does(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with without_batches(tmp_path) as client:
            with pytest.raises(GRPCError) as error:
                await client.next_subtasks("nope", [("s1", "n1")])
            assert error.value.status is Status.NOT_FOUND
            assert "unknown task 'nope'" in (error.value.message or "")
            await client.create_task("t1", 8, {})
            with pytest.raises(GRPCError) as error:
                await client.verify_batch("t1", ["s9"])
            assert error.value.status is Status.NOT_FOUND
            assert "unknown subtask 's9'" in (error.value.message or "")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("ids", "message"),
    [([], "asks is empty"), (["s1", "s2", "s1"], "asks names subtask 's1' twice")],
)
def test_a_bad_batch_is_refused_alike_by_a_client_that_fell_back(
    tmp_path: Path, ids: list[str], message: str
) -> None:
    async def scenario() -> None:
        async with without_batches(tmp_path) as client:
            await client.create_task("t1", 8, {})
            client.batches = False
            with pytest.raises(GRPCError) as error:
                await client.next_subtasks("t1", [(subtask_id, "n") for subtask_id in ids])
            assert error.value.status is Status.INVALID_ARGUMENT
            assert message in (error.value.message or "")
            with pytest.raises(GRPCError) as error:
                await client.verify_batch("t1", ids)
            assert error.value.status is Status.INVALID_ARGUMENT
            assert await client.next_subtasks("t1", [("s1", "n")]) == [Subtask(params={"subtask": "s1"})]

    asyncio.run(scenario())


def test_a_batch_longer_than_an_app_takes_goes_in_several_calls(tmp_path: Path) -> None:
    """An SDK server that serves batches (and refuses more than MAX_BATCH ids a call) answers the client's
    batch of MAX_BATCH + 4 ids, in order."""

    async def scenario() -> None:
        gate = CallGate()
        service = RequestorAppService(tmp_path, FailingRequestor(), gate)
        server = Server([service, RequestorAppBatchService(service, gate)])
        port = free_port()
        await server.start(HOST, port)
        client = RequestorAppClient(AppChannel(HOST, port))
        try:
            await client.create_task("t1", 8, {})
            ids = [f"s{number}" for number in range(MAX_BATCH + 4)]
            subtasks, pending = await client.next_subtasks_with_pending("t1", [(i, "n") for i in ids])
            assert subtasks == [Subtask(params={"subtask": i}) for i in ids]
            assert pending is True
            for subtask_id in ids:
                deliver(tmp_path, "t1", subtask_id)
            assert await client.verify_batch("t1", ids) == [(VerifyResult.SUCCESS, "", {})] * len(ids)
            assert client.batches
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
