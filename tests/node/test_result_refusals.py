"""Hostile results sent by hand over the node protocol to a real `taskapi requestor serve` process.

A raw client holding the provider token joins, takes a real assignment, then sends a result the
requestor must refuse: bytes that do not match the announced sha256 or size, a file name that tries to
leave the subtask's output dir, a result over the size limit. Each is refused with its reason, the
subtask is `failed` and its work goes back to pending (the same range is handed out again), nothing is
written outside subtask_outputs, and an honest result for the range then finishes the task.

The tasks run in the `local` environment: these refusals happen before any app or environment sees
the bytes, and a hand-made wasm result could not claim the fuel its re-execution would measure.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from protos import node_pb2 as npb

from .cluster import Cluster, Requestor, expected_result
from .wire import RawProvider, ResultFile, honest_result

log = logging.getLogger(__name__)

# One range [0, 4096) that holds the answer (1922): one accepted result finishes the task.
TASK = {"input": "node-q2", "difficulty": 12, "subtasks": 1}
MAX_RESULT_BYTES = 64 * 1024 * 1024  # the requestor's default limit


@dataclass(frozen=True)
class Attack:
    reason: str
    result: Callable[[Path, bytes], ResultFile]


ATTACKS = {
    "sha256 mismatch": Attack(
        "result sha256 does not match the announced digest",
        lambda root, good: ResultFile("result.json", good, announced_sha256="0" * 64),
    ),
    "flipped byte": Attack(
        "result sha256 does not match the announced digest",
        lambda root, good: ResultFile(
            "result.json", good[:-1] + bytes([good[-1] ^ 1]), announced_sha256=_sha(good)
        ),
    ),
    "more bytes than announced": Attack(
        "differs from the announced",
        lambda root, good: ResultFile("result.json", good + b" " * 200_000, announced_size=len(good)),
    ),
    "fewer bytes than announced": Attack(
        "differs from the announced",
        lambda root, good: ResultFile("result.json", good, announced_size=len(good) + 1),
    ),
    "dot-dot name": Attack(
        "invalid result file name", lambda root, good: ResultFile("../../../../../../evil.json", good)
    ),
    "dot-dot alone": Attack("invalid result file name", lambda root, good: ResultFile("..", good)),
    "nested name": Attack("invalid result file name", lambda root, good: ResultFile("sub/evil.json", good)),
    "absolute name": Attack(
        "invalid result file name", lambda root, good: ResultFile(str(root / "evil.json"), good)
    ),
    "empty name": Attack("invalid result file name", lambda root, good: ResultFile("", good)),
    "oversized": Attack(
        f"exceeds the {MAX_RESULT_BYTES}-byte limit",
        lambda root, good: ResultFile("result.json", good, announced_size=MAX_RESULT_BYTES + 1),
    ),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Target:
    cluster: Cluster
    requestor: Requestor
    provider: RawProvider


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One requestor process for the module, and one raw provider joined to it."""
    cluster = Cluster(tmp_path_factory.mktemp("refusals"))
    try:
        requestor = cluster.requestor()
        provider = requestor.raw_provider("raw-provider")
        provider.join(envs=["local"]).value()
        yield Target(cluster, requestor, provider)
        provider.close()
    finally:
        cluster.close()
        print(cluster.logs())


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def take_one(target: Target, task_id: str) -> npb.Assignment:
    (assignment,) = target.provider.request_work(slots=1, wait_ms=30_000).value().assignments
    assert assignment.task_id == task_id
    return assignment


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=list(ATTACKS))
def test_a_bad_result_is_refused_and_its_work_goes_back_to_pending(target: Target, attack: Attack) -> None:
    requestor, provider, root = target.requestor, target.provider, target.cluster.root
    control = requestor.control()
    task_id = control.submit("tutorialapp", "local", TASK).value().task_id
    try:
        assignment = take_one(target, task_id)
        good = honest_result(assignment.subtask_params_json)
        before = files_under(root)

        reply = provider.submit(assignment.subtask_id, attack.result(root, good)).value()

        assert (reply.verdict, attack.reason in reply.reason) == ("rejected", True), reply
        (refused,) = requestor.store.subtasks(task_id)
        assert (refused.state, attack.reason in refused.reason) == ("failed", True), refused
        new = files_under(root) - before
        outside = {
            path
            for path in new
            if "subtask_outputs" not in path.parts and not path.name.endswith(("-wal", "-shm", ".log"))
        }
        assert not outside, f"written outside subtask_outputs: {outside}"
        leftovers = [p for p in new if assignment.subtask_id in str(p)]
        assert not leftovers, f"refused result left files behind: {leftovers}"
        assert not list(root.rglob("evil*")), "a result escaped its directory"
        requestor.wait_for_log(f"subtask {assignment.subtask_id}: result refused: ")

        again = take_one(target, task_id)
        assert again.subtask_params_json == assignment.subtask_params_json, "the range was not pending again"
        assert again.subtask_id != assignment.subtask_id
        honest = ResultFile("result.json", honest_result(again.subtask_params_json))
        assert provider.submit(again.subtask_id, honest).value().verdict == "accepted"
        status = control.status(task_id).value()
        assert status.state == "finished"
        assert dict(status.subtasks_by_state) == {"failed": 1, "accepted": 1}
        assert requestor.result(task_id) == expected_result("node-q2", 12)
    finally:
        control.abort(task_id)
        control.close()
    log.info("%s: refused (%s), range handed out again, task finished", attack.reason, reply.reason)


def test_a_refused_subtask_takes_no_second_result(target: Target) -> None:
    """Once refused, a subtask is closed: a corrected retry under the same id is not taken."""
    requestor, provider = target.requestor, target.provider
    control = requestor.control()
    task_id = control.submit("tutorialapp", "local", TASK).value().task_id
    try:
        assignment = take_one(target, task_id)
        good = honest_result(assignment.subtask_params_json)
        bad = ResultFile("result.json", good, announced_sha256="0" * 64)
        assert provider.submit(assignment.subtask_id, bad).value().verdict == "rejected"
        retry = provider.submit(assignment.subtask_id, ResultFile("result.json", good))
        assert retry.status.name == "FAILED_PRECONDITION", retry
        assert "is failed, not assigned" in retry.details
    finally:
        control.abort(task_id)
        control.close()
