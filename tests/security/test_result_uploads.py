"""Results are content-addressed end to end (issue 18, item 2): two SubmitResult streams for one subtask.

Against a real `taskapi requestor serve` process: a raw provider takes a real tutorialapp assignment and
opens a first upload, sends its header and part of its bytes, and waits until the requestor is writing
them (its temporary file exists). A second upload for the same subtask is then refused ALREADY_EXISTS
with the reason; the first completes. The file the requestor keeps is exactly the first upload's bytes,
and the digest it recorded is theirs: no forged byte of the second can end up on disk under an honest
digest (before the fix both streams wrote one `.partial` file and the honest digest was recorded while
forged bytes stayed on disk).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from protos import node_pb2 as npb
from tests.node.cluster import Cluster, Requestor, expected_result
from tests.node.wire import RawProvider, ResultFile, honest_result

TASK = {"input": "node-q2", "difficulty": 12, "subtasks": 1}  # one range [0, 4096) holding the answer


def forged_result(params_json: str) -> bytes:
    """A claim of the same shape and length as the honest one, with another nonce."""
    honest = honest_result(params_json)
    forged = honest.replace(b'"nonce": ', b'"nonce": 9', 1)
    assert forged != honest
    return forged


@pytest.fixture
def requestor(tmp_path: Path) -> Iterator[Requestor]:
    cluster = Cluster(tmp_path)
    try:
        yield cluster.requestor()
    finally:
        cluster.close()
        print(cluster.logs())


def recorded(requestor: Requestor, subtask_id: str) -> tuple[str, str | None, str | None]:
    """(state, result name, result sha256) of a subtask, as the requestor's store holds them."""
    db = sqlite3.connect(f"file:{requestor.store.path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute(
            "SELECT state, result_name, result_sha256 FROM subtasks WHERE subtask_id = ?", (subtask_id,)
        ).fetchone()
    finally:
        db.close()
    return row[0], row[1], row[2]


async def upload(provider: RawProvider, subtask_id: str, data: bytes) -> npb.SubmitReply:
    """One whole upload of `data` as result.json."""
    async with provider.stub.SubmitResult.open(metadata=provider.metadata) as stream:
        header = ResultFile("result.json", data).header(provider.provider_id, subtask_id)
        await stream.send_message(npb.ResultPart(header=header))
        await stream.send_message(npb.ResultPart(data=data), end=True)
        reply = await stream.recv_message()
    assert reply is not None
    return reply


async def race(
    provider: RawProvider, subtask_id: str, first: bytes, second: bytes, temp_seen: Path
) -> tuple[npb.SubmitReply, Status | None, str]:
    """Upload `first` in two halves with `second` submitted in between; the first's reply and the
    second's refusal (status, message)."""
    head, tail = first[: len(first) // 2], first[len(first) // 2 :]
    async with provider.stub.SubmitResult.open(metadata=provider.metadata) as stream:
        await stream.send_message(
            npb.ResultPart(header=ResultFile("result.json", first).header(provider.provider_id, subtask_id))
        )
        await stream.send_message(npb.ResultPart(data=head))
        while not list(temp_seen.rglob(f".{subtask_id}*partial")):  # the requestor is writing it
            await asyncio.sleep(0.01)
        refused: tuple[Status | None, str] = (None, "")
        try:
            await upload(provider, subtask_id, second)
        except GRPCError as exc:
            refused = (exc.status, exc.message or "")
        await stream.send_message(npb.ResultPart(data=tail), end=True)
        reply = await stream.recv_message()
    assert reply is not None
    return reply, *refused


@pytest.mark.parametrize(
    ("first_kind", "second_kind"),
    [("honest", "forged"), ("forged", "honest"), ("honest", "honest")],
    ids=["forger second", "forger first", "same bytes twice"],
)
def test_a_second_concurrent_upload_is_refused_and_the_kept_file_is_the_hashed_one(
    requestor: Requestor, first_kind: str, second_kind: str
) -> None:
    provider = requestor.raw_provider("uploader")
    provider.join(envs=["local"]).value()
    control = requestor.control()
    task_id = control.submit("tutorialapp", "local", TASK).value().task_id
    try:
        (assignment,) = provider.request_work(slots=1, wait_ms=30_000).value().assignments
        subtask_id, params = assignment.subtask_id, assignment.subtask_params_json
        make = {"honest": honest_result, "forged": forged_result}
        first, second = make[first_kind](params), make[second_kind](params)

        reply, status, message = provider.loop.run(
            race(provider, subtask_id, first, second, requestor.data_dir), "two concurrent uploads"
        )

        assert status is Status.ALREADY_EXISTS, (status, message)
        assert f"a result for subtask {subtask_id!r} is already arriving" in message
        state, name, digest = recorded(requestor, subtask_id)
        assert digest == hashlib.sha256(first).hexdigest(), "the recorded digest is not the kept upload's"
        (kept,) = requestor.data_dir.rglob(f"subtask_outputs/{subtask_id}/{name}")
        assert kept.read_bytes() == first, "the file on disk is not the bytes that were hashed"
        assert not list(requestor.data_dir.rglob(f".{subtask_id}*partial")), "a temporary file was left"
        if first_kind == "honest":
            assert (reply.verdict, state) == ("accepted", "accepted"), reply
            status_now = control.status(task_id).value()
            assert status_now.state == "finished"
            assert requestor.result(task_id) == expected_result("node-q2", 12)
        else:
            assert (reply.verdict, state) == ("rejected", "rejected"), reply
        assert requestor.running, "the requestor did not survive the race"
    finally:
        control.abort(task_id)
        control.close()
        provider.close()


def test_uploads_of_different_subtasks_arrive_side_by_side(requestor: Requestor) -> None:
    """The refusal is per subtask: concurrent uploads of two subtasks are both taken."""
    provider = requestor.raw_provider("uploader")
    provider.join(envs=["local"], capacity=2).value()
    control = requestor.control()
    # three ranges: the open-ended last one waits until both below it are done
    task_id = control.submit("tutorialapp", "local", {**TASK, "subtasks": 3}).value().task_id
    try:
        assignments = provider.request_work(slots=2, wait_ms=30_000).value().assignments
        assert len(assignments) == 2

        async def both() -> list[npb.SubmitReply]:
            uploads = [
                upload(provider, a.subtask_id, honest_result(a.subtask_params_json)) for a in assignments
            ]
            return list(await asyncio.gather(*uploads))

        replies = provider.loop.run(both(), "two uploads")
        assert [reply.verdict for reply in replies] == ["accepted", "accepted"], replies
        for a in assignments:
            state, _, digest = recorded(requestor, a.subtask_id)
            assert (state, digest) == (
                "accepted",
                hashlib.sha256(honest_result(a.subtask_params_json)).hexdigest(),
            )
    finally:
        control.abort(task_id)
        control.close()
        provider.close()
