"""A requestor that stops (or dies) after its app verified a result, before the rest of the verification
ladder (re-execution, trust) ended, finishes the result with the app's verdict when it starts again: the
app refuses to verify a subtask twice ("is verified, not assigned"), and before the app's verdict was kept
that refusal failed the result as INCONCLUSIVE and blamed its honest provider.

A provider caught with a wrong result costs its task's failure budget once: the wrong results it still
delivers afterwards (what it held when caught: capacity + queue) are its own failures, not the task's, and a
restarted requestor counts them the same way (the store keeps which failures were forgiven) and keeps the
provider out of the task."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protos import node_pb2 as npb
from runtime.node.states import SubtaskState

from .test_node_batching import until
from .test_requestor_machine import HOST, PROVIDER_TOKEN, Harness
from .wire import RawProvider, ResultFile, honest_result, wrong_result

PARAMS = {"input": "beta", "difficulty": 6, "subtasks": 3}
HELD = 3


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    served = Harness(tmp_path / "requestor")
    try:
        yield served
    finally:
        served.close()


async def held_ladder(*_: Any) -> Any:
    """The rest of the ladder (re-execution, say) still running when the requestor stops."""
    await asyncio.Event().wait()


def test_a_result_the_app_judged_before_a_restart_keeps_the_apps_verdict(harness: Harness) -> None:
    task_id = harness.control.submit("tutorialapp", "local", PARAMS).value().task_id
    provider = RawProvider(harness.loop, HOST, harness.port, PROVIDER_TOKEN, "judged-before-restart")
    try:
        provider.join(capacity=1).value()
        (assignment,) = provider.request_work(slots=1).value().assignments
        subtask_id = assignment.subtask_id
        harness.node.verification.ladder = held_ladder  # type: ignore[method-assign,assignment]
        result = ResultFile("result.json", honest_result(assignment.subtask_params_json))
        submitting = harness.loop.loop.create_task(provider._submit(subtask_id, result))
        store = harness.node.store
        harness.loop.run(until(lambda: store.app_verdict(subtask_id) is not None, "the app's verdict"))
        judged = store.app_verdict(subtask_id)
        assert judged is not None and judged[0] == "SUCCESS"

        harness.restart()  # the held verification outlives stop()'s grace and is cancelled: still delivered
        submitting.cancel()
        restarted = harness.node.store

        def state() -> str | None:
            row = restarted.subtask(subtask_id)
            return None if row is None else row.state

        harness.loop.run(until(lambda: state() != "delivered", "the result judged again"))
        row = restarted.subtask(subtask_id)
        assert row is not None and row.state == "accepted", row
    finally:
        harness.control.abort(task_id)
        provider.close()


def wrong(assignment: npb.Assignment) -> ResultFile:
    return ResultFile("result.json", wrong_result(assignment.subtask_params_json))


def test_a_caught_providers_later_wrong_results_count_once_before_and_after_a_restart(
    harness: Harness,
) -> None:
    params = {**PARAMS, "subtasks": 6}
    task_id = harness.control.submit("tutorialapp", "local", params).value().task_id
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
