"""A provider caught with a wrong result costs its task's failure budget once: the wrong results it still
delivers afterwards (what it held when caught: capacity + queue) are its own failures, not the task's, and a
restarted requestor counts them the same way (the store keeps which failures were forgiven) and keeps the
provider out of the task."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protos import node_pb2 as npb
from runtime.node.states import SubtaskState

from .test_requestor_machine import HOST, PROVIDER_TOKEN, Harness
from .wire import RawProvider, ResultFile, wrong_result

PARAMS = {"input": "beta", "difficulty": 6, "subtasks": 6}
HELD = 3


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    served = Harness(tmp_path / "requestor")
    try:
        yield served
    finally:
        served.close()


def wrong(assignment: npb.Assignment) -> ResultFile:
    return ResultFile("result.json", wrong_result(assignment.subtask_params_json))


def test_a_caught_providers_later_wrong_results_count_once_before_and_after_a_restart(
    harness: Harness,
) -> None:
    task_id = harness.control.submit("tutorialapp", "local", PARAMS).value().task_id
    cheat = RawProvider(harness.loop, HOST, harness.port, PROVIDER_TOKEN, "caught-wrong")
    try:
        cheat.join(capacity=HELD).value()
        first, second, last = cheat.request_work(slots=HELD).value().assignments
        for assignment in (first, second):
            assert cheat.submit(assignment.subtask_id, wrong(assignment)).value().verdict == "rejected"
        assert harness.node.core.tasks[task_id].failures == 1, "a caught provider's leftovers were counted"
    finally:
        cheat.close()

    harness.restart()  # the cheat still holds `last`, and delivers it to the restarted requestor
    assert harness.node.core.tasks[task_id].failures == 1, "the restart counted the forgiven failure"
    again = RawProvider(harness.loop, HOST, harness.port, PROVIDER_TOKEN, "caught-wrong")
    try:
        assert again.submit(last.subtask_id, wrong(last)).value().verdict == "rejected"
        assert harness.node.core.tasks[task_id].failures == 1, "its leftover counted after the restart"
        rows = [harness.node.store.subtask(a.subtask_id) for a in (first, second, last)]
        assert [(row.state, row.forgiven) for row in rows if row is not None] == [
            (SubtaskState.REJECTED, False),
            (SubtaskState.REJECTED, True),
            (SubtaskState.REJECTED, True),
        ]
        assert not again.request_work(slots=HELD).value().assignments, "the caught provider got work again"
    finally:
        again.close()
