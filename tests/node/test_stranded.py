"""Liveness: a task whose every provider was dropped fails with a reason instead of waiting forever.

Real processes (tests/node/cluster.py): `taskapi requestor serve --stranded-s 1` and two providers whose
runner always raises, so each is dropped after `max_provider_failures` reported failures.
"""

from __future__ import annotations

from .cluster import Cluster, wait_until

PARAMS = {"input": "stranded", "difficulty": 8, "subtasks": 8}


def test_a_task_whose_providers_were_all_dropped_fails_with_the_reason(cluster: Cluster) -> None:
    requestor = cluster.requestor(options=("--stranded-s", "1"))
    broken = [cluster.cheating_provider(name, requestor, "raise") for name in ("broken-1", "broken-2")]
    task_id = requestor.submit("tutorialapp", "local", PARAMS)
    for provider in broken:
        requestor.wait_for_log(f"provider {provider.provider_id} dropped from task {task_id}: 3 failures")

    status = requestor.wait_for_task(task_id)

    assert status.state == "failed"
    assert status.reason == (
        "no provider can take its work for 1 s:"
        " all 2 provider(s) that came were dropped from it or refused its app"
    )
    failed = [s for s in requestor.store.subtasks(task_id) if s.state == "failed"]
    assert {s.provider_id for s in failed} == {p.provider_id for p in broken}
    assert requestor.running and all(p.running for p in broken)


def test_a_task_waits_while_a_provider_that_may_take_it_is_joined(cluster: Cluster) -> None:
    """The rule needs every joined provider shut out: one dropped provider beside an honest one is not."""
    requestor = cluster.requestor(options=("--stranded-s", "0"))
    broken = cluster.cheating_provider("broken", requestor, "raise")
    honest = cluster.provider("honest", requestor)
    wait_until(
        lambda: {broken.provider_id, honest.provider_id} <= set(requestor.store.providers()),
        "both providers joining",
    )
    task_id = requestor.submit("tutorialapp", "local", {**PARAMS, "subtasks": 32})

    status = requestor.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    requestor.wait_for_log(f"provider {broken.provider_id} dropped from task {task_id}: 3 failures")
