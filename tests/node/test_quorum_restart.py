"""A quorum survives a killed-and-restarted requestor: a primary's result held for its quorum, the replica
still wanted, both come back from the store, and the replica's result settles the quorum after the restart.

Providers speak the node protocol by hand (tests/node/wire.py), so every step is explicit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.appmanager import AppManager

from .test_requestor_machine import HOST, PROVIDER_TOKEN, Harness
from .wire import RawProvider, ResultFile, honest_result

PARAMS = {"input": "quorum-restart", "difficulty": 4, "subtasks": 1}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Harness]:
    descriptor = json.loads(
        (Path(__file__).parents[2] / "apps" / "tutorialapp" / "descriptor.json").read_text()
    )
    descriptor.update(name="tutorialapp-quorum", redundancy={"quorum": 2})
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "descriptor.json").write_text(json.dumps(descriptor))
    AppManager(tmp_path / "requestor").add(tmp_path / "build", enable=True)
    harness = Harness(tmp_path / "requestor")
    try:
        yield harness
    finally:
        harness.close()


def provider(harness: Harness, name: str) -> RawProvider:
    wire = RawProvider(harness.loop, HOST, harness.port, PROVIDER_TOKEN, name)
    wire.join(envs=["local"], capacity=2).value()  # room for a replica: only the rule keeps it away
    return wire


def test_a_held_result_and_a_wanted_replica_survive_a_restart(served: Harness) -> None:
    task_id = served.control.submit("tutorialapp-quorum", "local", PARAMS).value().task_id
    first = provider(served, "p1")
    (primary,) = first.request_work().value().assignments
    assert first.request_work().value().assignments == [], "a replica went to the primary's own provider"
    held = first.submit(
        primary.subtask_id, ResultFile("result.json", honest_result(primary.subtask_params_json))
    )
    assert held.value().verdict == "held", held

    first.close()
    served.restart()  # the requestor goes away with the primary held and its replica wanted

    states = {s.subtask_id: s.state for s in served.node.store.subtasks(task_id=task_id)}
    assert states.pop(primary.subtask_id) == "delivered" and list(states.values()) == ["wanted"], states
    second = provider(served, "p2")
    (replica,) = second.request_work().value().assignments
    assert replica.subtask_id != primary.subtask_id
    assert replica.subtask_params_json == primary.subtask_params_json
    settled = second.submit(
        replica.subtask_id, ResultFile("result.json", honest_result(replica.subtask_params_json))
    )
    assert settled.value().verdict == "accepted", settled
    status = served.control.status(task_id).value()
    assert status.state == "finished", status.reason
    assert dict(status.subtasks_by_state) == {"accepted": 2}
    billed = sorted(bill.provider_id for bill in status.bills)
    assert billed == sorted([first.provider_id, second.provider_id]), "both copies are billed"
    second.close()
