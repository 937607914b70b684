"""Checked task and subtask states (runtime/node/states.py) as the real SQLite store enforces them.

Hypothesis writes random sequences of states through the store's own write methods: a write the
transition table allows is stored and recorded in the subtask's history; every other one raises
IllegalTransition naming the current state and the history, and changes nothing. Hand-written cases pin
the transitions the requestor's lifecycle needs and the ones a race must never make (`aborted ->
accepted`). The last test makes that race happen on a real node served over gRPC: a task is aborted
while its subtask's result is being verified.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.sdk.handlers import VerifyResult
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import serve_requestor
from runtime.node.states import (
    NEW_SUBTASK_STATES,
    SUBTASK_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    SubtaskState,
    TaskState,
)
from runtime.node.store import Store, TaskRow

from .wire import Control, Loop, RawProvider, ResultFile, honest_result

S = SubtaskState
HOST = "127.0.0.1"
PROVIDER_TOKEN = "states-provider-token"
CONTROL_TOKEN = "states-control-token"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store(tmp_path_factory.mktemp("states") / "store.sqlite")
    yield opened
    opened.close()


IDS = itertools.count()


def new_task(store: Store) -> str:
    task_id = f"task-{next(IDS)}"
    store.add_task(TaskRow(task_id, "app", "app-id", "env", {}, 1, TaskState.ACTIVE, "", {}))
    return task_id


def new_subtask(store: Store, start: SubtaskState) -> str:
    """A subtask created as the requestor creates them: a request to the app, or a replica."""
    task_id = new_task(store)
    primary_id = f"sub-{next(IDS)}"
    store.add_subtask(primary_id, task_id, "provider")
    if start is S.REQUESTED:
        return primary_id
    primary = store.subtask(primary_id)
    assert primary is not None
    replica_id = f"sub-{next(IDS)}"
    store.want_replica(replica_id, primary)
    return replica_id


def write(store: Store, subtask_id: str, target: SubtaskState) -> None:
    """Write `target` through the store method the requestor uses for it."""
    if target is S.ASSIGNED:
        current = store.subtask(subtask_id)
        if current is not None and current.state is S.WANTED:
            store.take_replica(subtask_id, "provider", 1)
        else:
            store.assign_subtask(subtask_id, "{}", [], 1)
    elif target is S.DELIVERED:
        store.deliver_subtask(subtask_id, "result.json", "0" * 64, {"wall_ms": 1, "cpu_ns": 1, "fuel": 1})
    else:
        store.set_subtask_state(subtask_id, target, f"to {target}")


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from(sorted(NEW_SUBTASK_STATES)), targets=st.lists(st.sampled_from(S), max_size=6))
def test_every_subtask_write_is_stored_if_the_table_allows_it_and_refused_otherwise(
    store: Store, start: SubtaskState, targets: list[SubtaskState]
) -> None:
    subtask_id = new_subtask(store, start)
    state, history = start, [str(start)]
    for target in targets:
        before = store.subtask(subtask_id)
        if target in SUBTASK_TRANSITIONS[state]:
            write(store, subtask_id, target)
            state = target
            history.append(str(target))
        else:
            with pytest.raises(IllegalTransition) as refused:
                write(store, subtask_id, target)
            assert (refused.value.current, refused.value.target) == (state, target)
            assert refused.value.history == history
            assert f"cannot become {target} from {state}" in str(refused.value)
            assert store.subtask(subtask_id) == before, "a refused write changed the row"
        row = store.subtask(subtask_id)
        assert row is not None and row.state is state
        assert store.history(subtask_id) == history


@settings(max_examples=100, deadline=None)
@given(targets=st.lists(st.sampled_from(TaskState), max_size=4))
def test_every_task_write_is_stored_if_the_table_allows_it_and_refused_otherwise(
    store: Store, targets: list[TaskState]
) -> None:
    task_id = new_task(store)
    state = TaskState.ACTIVE
    for target in targets:
        if target in TASK_TRANSITIONS[state]:
            store.set_task_state(task_id, target, "why")
            state = target
        else:
            with pytest.raises(IllegalTransition, match=f"cannot become {target} from {state}"):
                store.set_task_state(task_id, target, "why")
        row = store.task(task_id)
        assert row is not None and row.state is state


LIFECYCLES = {
    "accepted, then found forged": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.ACCEPTED, S.DISCARDED],
    "rejected by Verify": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.REJECTED],
    "inconclusive": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.FAILED],
    "aborted while verified": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.ABORTED],
    "lease expired": [S.REQUESTED, S.ASSIGNED, S.EXPIRED],
    "provider failed": [S.REQUESTED, S.ASSIGNED, S.FAILED],
    "bad resource": [S.REQUESTED, S.FAILED],
    "crash mid-request": [S.REQUESTED, S.ABANDONED],
    "replica accepted": [S.WANTED, S.ASSIGNED, S.DELIVERED, S.ACCEPTED],
    "replica cancelled": [S.WANTED, S.ABORTED],
}


@pytest.mark.parametrize("path", LIFECYCLES.values(), ids=list(LIFECYCLES))
def test_the_requestor_lifecycles_are_allowed(store: Store, path: list[SubtaskState]) -> None:
    subtask_id = new_subtask(store, path[0])
    for target in path[1:]:
        write(store, subtask_id, target)
    assert store.history(subtask_id) == [str(state) for state in path]


RACES = {
    "abort raced a verification": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.ABORTED, S.ACCEPTED],
    "lease expired while verified": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.EXPIRED],
    "result after expiry": [S.REQUESTED, S.ASSIGNED, S.EXPIRED, S.DELIVERED],
    "verdict twice": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.REJECTED, S.ACCEPTED],
    "a rejected result discarded": [S.REQUESTED, S.ASSIGNED, S.DELIVERED, S.REJECTED, S.DISCARDED],
    "assigned twice": [S.WANTED, S.ASSIGNED, S.ASSIGNED],
    "accepted unverified": [S.REQUESTED, S.ASSIGNED, S.ACCEPTED],
}


@pytest.mark.parametrize("path", RACES.values(), ids=list(RACES))
def test_a_write_no_lifecycle_makes_is_refused(store: Store, path: list[SubtaskState]) -> None:
    subtask_id = new_subtask(store, path[0])
    for target in path[1:-1]:
        write(store, subtask_id, target)
    with pytest.raises(IllegalTransition, match=f"cannot become {path[-1]} from {path[-2]}"):
        write(store, subtask_id, path[-1])


def test_an_unknown_subtask_is_refused(store: Store) -> None:
    with pytest.raises(IllegalTransition, match="subtask nowhere cannot become aborted from nothing"):
        store.set_subtask_state("nowhere", S.ABORTED)


def test_a_store_keeps_state_text_as_before(store: Store) -> None:
    """The enums are str-valued: the SQLite text is the state's name, as stores written before them."""
    subtask_id = new_subtask(store, S.REQUESTED)
    raw = store._db.execute("SELECT state FROM subtasks WHERE subtask_id = ?", (subtask_id,)).fetchone()
    assert raw[0] == "requested" and type(raw[0]) is str


TASK = {"input": "states-race", "difficulty": 12, "subtasks": 1}


def test_an_abort_during_verification_leaves_the_subtask_aborted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's Verify answer is held until the task is aborted; its late SUCCESS must not make the
    aborted subtask accepted (nor bill it): the provider is answered FAILED_PRECONDITION."""
    loop = Loop()
    node = RequestorNode(tmp_path, RequestorConfig(reap_interval_s=3600))
    loop.run(node.start(), "requestor start")
    server, port = loop.run(
        serve_requestor(node, HOST, 0, provider_token=PROVIDER_TOKEN, control_token=CONTROL_TOKEN), "serve"
    )
    control = Control(loop, HOST, port, CONTROL_TOKEN)
    provider = RawProvider(loop, HOST, port, PROVIDER_TOKEN, "race-provider")
    try:
        task_id = control.submit("tutorialapp", "local", TASK).value().task_id
        provider.join(envs=["local"]).value()
        (assignment,) = provider.request_work(slots=1, wait_ms=30_000).value().assignments
        client = node._active[task_id].client
        verifying, answer = asyncio.Event(), asyncio.Event()
        real_verify = client.verify_batch
        verdicts: list[tuple[VerifyResult, str, dict[str, str]]] = []

        async def held_verify(
            task: str, subtasks: Sequence[str]
        ) -> list[tuple[VerifyResult, str, dict[str, str]]]:
            batch = await real_verify(task, subtasks)
            verdicts.extend(batch)
            verifying.set()
            await answer.wait()  # the app's answer is on its way back when the task is aborted
            return batch

        monkeypatch.setattr(client, "verify_batch", held_verify)
        result = ResultFile("result.json", honest_result(assignment.subtask_params_json))

        async def race() -> GRPCError:
            submit = asyncio.ensure_future(provider._submit(assignment.subtask_id, result))
            await verifying.wait()
            await node.abort_task(task_id)
            answer.set()
            with pytest.raises(GRPCError) as refused:
                await submit
            return refused.value

        refused = loop.run(race(), "race")
        assert [v[0] for v in verdicts] == [VerifyResult.SUCCESS], "the app's Verify accepted it"
        assert refused.status is Status.FAILED_PRECONDITION
        assert "cannot become accepted from aborted" in (refused.message or "")
        row = node.store.subtask(assignment.subtask_id)
        assert row is not None and row.state is S.ABORTED
        assert node.store.history(assignment.subtask_id) == ["requested", "assigned", "delivered", "aborted"]
        status = control.status(task_id).value()
        assert status.state == TaskState.ABORTED and not status.bills
    finally:
        provider.close()
        control.close()
        server.close()
        loop.run(server.wait_closed(), "server close")
        loop.run(node.stop(), "requestor stop")
        loop.close()
