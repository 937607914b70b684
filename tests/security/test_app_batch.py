"""Hostile RequestorAppBatch calls against a real SDK app server (the Python tutorialapp's process).

Each case asserts the named refusal, that the whole batch took no effect (the server's work dir is byte for
byte what it was: nothing written inside it or outside), and that the server still serves batches and
single calls afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk import VerifyResult
from apps.sdk.batch import MAX_BATCH
from apps.sdk.client import RequestorAppClient
from protos import taskapi_pb2 as pb
from protos.taskapi_grpc import RequestorAppBatchStub
from runtime.conformance.wire import AppServer, Loop

TASK = "t1"
PARAMS = {"input": "hostile", "difficulty": 4, "subtasks": 4}
LONG_ID = "a" * 128


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root`, logs aside (the server logs each refusal), by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.endswith(".log")
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Loop, AppServer, RequestorAppClient]]:
    """A tutorialapp requestor server with task TASK created, s0 and s1 handed out and s0's result in."""
    loop = Loop()
    server = AppServer(loop, [sys.executable, "-m", "apps.tutorialapp"], "requestor", tmp_path / "work")
    try:
        server.start()
        client = RequestorAppClient(server.channel)
        loop.run(client.create_task(TASK, 8, PARAMS))
        loop.run(client.next_subtasks(TASK, [("s0", "n"), ("s1", "n")]))
        outputs = server.work_dir / TASK / "subtask_outputs" / "s0"
        outputs.mkdir(parents=True)
        (outputs / "result.json").write_text("{}")
        yield loop, server, client
    finally:
        server.close()
        loop.close()


def asks(*subtask_ids: str) -> list[pb.SubtaskAsk]:
    return [pb.SubtaskAsk(subtask_id=subtask_id, opaque_node_id="n") for subtask_id in subtask_ids]


NEXT_SUBTASKS = [
    pytest.param(pb.NextSubtasksRequest(task_id=TASK), Status.INVALID_ARGUMENT, "asks is empty", id="empty"),
    pytest.param(
        pb.NextSubtasksRequest(task_id=TASK, asks=asks(*(f"x{i}" for i in range(MAX_BATCH + 1)))),
        Status.INVALID_ARGUMENT,
        f"asks names {MAX_BATCH + 1} subtasks, over the limit of {MAX_BATCH}",
        id="too-many",
    ),
    pytest.param(
        pb.NextSubtasksRequest(task_id=TASK, asks=asks("x1", "x2", "x1")),
        Status.INVALID_ARGUMENT,
        "asks names subtask 'x1' twice",
        id="duplicate",
    ),
    pytest.param(
        pb.NextSubtasksRequest(task_id=TASK, asks=asks("x1", "../../escape")),
        Status.INVALID_ARGUMENT,
        "invalid subtask id '../../escape'",
        id="traversing-id",
    ),
    pytest.param(
        pb.NextSubtasksRequest(task_id=TASK, asks=asks("x1", LONG_ID + "a")),
        Status.INVALID_ARGUMENT,
        "invalid subtask id",
        id="overlong-id",
    ),
    pytest.param(
        pb.NextSubtasksRequest(task_id="nope", asks=asks("x1")),
        Status.NOT_FOUND,
        "unknown task 'nope'",
        id="unknown-task",
    ),
    pytest.param(
        pb.NextSubtasksRequest(task_id="../work", asks=asks("x1")),
        Status.INVALID_ARGUMENT,
        "invalid task id '../work'",
        id="traversing-task",
    ),
    pytest.param(
        pb.NextSubtasksRequest(task_id=TASK, asks=asks("x1", "x2", "s1")),
        Status.ALREADY_EXISTS,
        "subtask 's1' of task 't1' already exists",
        id="used-id-last",
    ),
]

VERIFY_BATCH = [
    pytest.param(
        pb.VerifyBatchRequest(task_id=TASK), Status.INVALID_ARGUMENT, "subtask_ids is empty", id="empty"
    ),
    pytest.param(
        pb.VerifyBatchRequest(task_id=TASK, subtask_ids=[f"x{i}" for i in range(MAX_BATCH + 1)]),
        Status.INVALID_ARGUMENT,
        f"subtask_ids names {MAX_BATCH + 1} subtasks, over the limit of {MAX_BATCH}",
        id="too-many",
    ),
    pytest.param(
        pb.VerifyBatchRequest(task_id=TASK, subtask_ids=["s0", "s0"]),
        Status.INVALID_ARGUMENT,
        "subtask_ids names subtask 's0' twice",
        id="duplicate",
    ),
    pytest.param(
        pb.VerifyBatchRequest(task_id=TASK, subtask_ids=["s0", "../s0"]),
        Status.INVALID_ARGUMENT,
        "invalid subtask id '../s0'",
        id="traversing-id",
    ),
    pytest.param(
        pb.VerifyBatchRequest(task_id="nope", subtask_ids=["s0"]),
        Status.NOT_FOUND,
        "unknown task 'nope'",
        id="unknown-task",
    ),
    pytest.param(
        pb.VerifyBatchRequest(task_id=TASK, subtask_ids=["s0", "x9"]),
        Status.NOT_FOUND,
        "unknown subtask 'x9'",
        id="unknown-subtask-last",
    ),
    pytest.param(
        pb.VerifyBatchRequest(task_id=TASK, subtask_ids=["s0", "s1"]),
        Status.FAILED_PRECONDITION,
        "no results for subtask 's1'",
        id="undelivered-last",
    ),
]


def assert_refused_without_effect(
    served: tuple[Loop, AppServer, RequestorAppClient],
    call: str,
    request: object,
    status: Status,
    message: str,
) -> None:
    loop, server, client = served
    before = snapshot(server.work_dir.parent)
    stub = RequestorAppBatchStub(server.channel)
    with pytest.raises(GRPCError) as refused:
        loop.run(getattr(stub, call)(request))
    assert refused.value.status is status
    assert message in (refused.value.message or "")
    assert snapshot(server.work_dir.parent) == before
    assert server.running
    # still serving batches: s0's "{}" result fails verification, another range is handed out
    assert [verdict for verdict, _, _ in loop.run(client.verify_batch(TASK, ["s0"]))] == [
        VerifyResult.FAILURE
    ]
    assert loop.run(client.next_subtasks(TASK, [("after", "n")]))[0] is not None
    assert client.batches


@pytest.mark.parametrize(("request_", "status", "message"), NEXT_SUBTASKS)
def test_hostile_next_subtasks_is_refused_whole(
    served: tuple[Loop, AppServer, RequestorAppClient],
    request_: pb.NextSubtasksRequest,
    status: Status,
    message: str,
) -> None:
    assert_refused_without_effect(served, "NextSubtasks", request_, status, message)


@pytest.mark.parametrize(("request_", "status", "message"), VERIFY_BATCH)
def test_hostile_verify_batch_is_refused_whole(
    served: tuple[Loop, AppServer, RequestorAppClient],
    request_: pb.VerifyBatchRequest,
    status: Status,
    message: str,
) -> None:
    assert_refused_without_effect(served, "VerifyBatch", request_, status, message)


def test_a_batch_over_the_message_limit_is_refused_before_it_is_read(
    served: tuple[Loop, AppServer, RequestorAppClient],
) -> None:
    request = pb.NextSubtasksRequest(task_id=TASK, asks=asks(*(f"{i:0128d}" for i in range(40_000))))
    assert request.ByteSize() > 4 * 1024 * 1024
    assert_refused_without_effect(
        served, "NextSubtasks", request, Status.RESOURCE_EXHAUSTED, "over the limit"
    )
