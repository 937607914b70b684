"""The node's requestor as a Hypothesis state machine, over real gRPC, with tutorialapp as its app.

One in-process RequestorNode, served by `serve_requestor` on a free port, with the tutorialapp
requestor app server as a real child process, is shared by every example: each example submits its
own task and uses its own provider ids, and aborts its task at the end, so examples cannot see each
other's work. Rules speak the node protocol through raw stubs (Join, RequestWork, Heartbeat,
SubmitResult, SubmitResults, ReportFailure, Leave), the control API (AbortTask) and the lease reaper
(expire a lease made stale in the store). A model of the task and of every subtask predicts each
reply's gRPC status and content; after every step the model must equal the store, the control API's
status and the app's own plan file.

The model states the intended behaviour (docs/protocol.md and the node's module docs):
- RequestWork hands out the lowest pending range first, up to `slots` (at least 1) and never past the
  provider's capacity (its live subtasks count), only to joined providers offering the task's
  environment and not barred from it;
- a result is taken only from the provider holding the subtask while it is `assigned`
  (NOT_FOUND for anyone else, FAILED_PRECONDITION once it is not assigned); several results sent in one
  SubmitResults call get, each, the verdict or refusal status its own SubmitResult would have got, taken
  in the order sent;
- a result with the wrong digest or name is refused (`failed`), a wrong claim is rejected by Verify
  (`rejected`, and its provider gets no more of the task); both return the range to pending, as do a
  reported failure (`failed`), an expired lease and a Leave (`expired`);
- more than `max_failures` such outcomes fail the task; a provider that caused `max_provider_failures`
  of them (a refused result, a reported failure, an expired lease: not a Leave) gets no more of the task;
  once a provider is shut out of the task (so dropped, rejected, or refusing its app), what it still held
  and fails after that counts against it alone, not the task, and a restart counts it the same;
  aborting a task aborts its live subtasks;
- a task finishes as soon as its answer is certain and no subtask is live, whatever made it so;
- a restarted requestor keeps every task and subtask state and every live lease; providers holding
  leases stay joined, others must join again; a provider dropped from a task (a result Verify rejected,
  `max_provider_failures`) stays dropped, while one that refused the task's app may be asked again
  (its whitelist may have changed).

Examples: TASKAPI_HYPOTHESIS_EXAMPLES (default 200).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from grpclib.const import Status
from grpclib.server import Server
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.tutorialapp import pow
from apps.tutorialapp.plan import OPEN_END, PLAN_FILE, Plan
from protos import node_pb2 as npb
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import serve_requestor
from runtime.node.scheduling import LeasesRenewed

from .wire import Control, Loop, RawProvider, ResultFile, honest_result

HOST = "127.0.0.1"
PROVIDER_TOKEN = "machine-provider-token"
CONTROL_TOKEN = "machine-control-token"
MAX_FAILURES = 5
MAX_PROVIDER_FAILURES = RequestorConfig().max_provider_failures
EXAMPLES = int(os.environ.get("TASKAPI_HYPOTHESIS_EXAMPLES", "200"))
PROVIDERS = 3
CAPACITY = 2
TEXTS = ("alpha", "beta", "gamma", "delta")
# Rare rules act on one roll of 16; not on 0 or 15, which Hypothesis draws far more often than 1/16.
ROLL = st.integers(0, 15)
RARE = 7


class Harness:
    """One requestor node served on one port; `restart` replaces it by a new one on the same data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = Loop()
        self.data_dir = data_dir
        self.port = 0
        self.node, self.server = self._start()
        self.control = Control(self.loop, HOST, self.port, CONTROL_TOKEN)
        self.examples = itertools.count()

    def _start(self) -> tuple[RequestorNode, Server]:
        config = RequestorConfig(lease_ms=600_000, max_failures=MAX_FAILURES, reap_interval_s=3600)
        node = RequestorNode(self.data_dir, config)
        self.loop.run(node.start(), "requestor start")
        server, self.port = self.loop.run(
            serve_requestor(
                node, HOST, self.port, provider_token=PROVIDER_TOKEN, control_token=CONTROL_TOKEN
            ),
            "serve",
        )
        return node, server

    def _stop(self) -> None:
        self.server.close()
        self.loop.run(self.server.wait_closed(), "server close")
        self.loop.run(self.node.stop(), "requestor stop")

    def restart(self) -> None:
        """Stop the node as an operator would, then start a new one on the same store and port.

        Clients dial again anyway; the closed server refuses calls on the connections it had accepted
        (UNAVAILABLE) and then closes them (`RequestorServer`).
        """
        self.control.close()
        self._stop()
        self.node, self.server = self._start()
        self.control = Control(self.loop, HOST, self.port, CONTROL_TOKEN)

    def close(self) -> None:
        self.control.close()
        self._stop()
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    served = Harness(tmp_path_factory.mktemp("requestor"))
    try:
        yield served
    finally:
        served.close()


@functools.cache
def truth(text: str, difficulty: int, start: int, end: int) -> int | None:
    return pow.search(text, difficulty, start, end)


@dataclass
class Range:
    state: str = "pending"  # pending | assigned | done
    subtask_id: str | None = None


@dataclass
class TaskModel:
    """tutorialapp's plan as its docs describe it, and the node's view of the task."""

    task_id: str
    text: str
    difficulty: int
    subtasks: int
    env: str = "local"
    state: str = "active"
    ranges: list[Range] = field(default_factory=list)
    barred: set[str] = field(default_factory=set)  # dropped from the task: stored, outlives a restart
    refused: set[str] = field(default_factory=set)  # refused the task's app: forgotten by a restart
    failures_by: Counter[str] = field(default_factory=Counter)
    # Failures of a provider already barred or refused (what it still held) do not count against the
    # task; the store keeps which, so a restart counts them the same.
    forgiven: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.range_size = max(1, -(-(2**self.difficulty) // self.subtasks))
        self.ranges = [Range() for _ in range(self.subtasks)]

    def bounds(self, index: int) -> tuple[int, int]:
        start = index * self.range_size
        return start, OPEN_END if index == self.subtasks - 1 else start + self.range_size

    def hit(self, index: int) -> int | None:
        return truth(self.text, self.difficulty, *self.bounds(index))

    def answer(self) -> int | None:
        for index, item in enumerate(self.ranges):
            if item.state != "done":
                return None
            if self.hit(index) is not None:
                return self.hit(index)
        return None

    def next_pending(self) -> int | None:
        """The lowest range worth computing (the last, open-ended range always holds a nonce, and waits
        until every range below it is done)."""
        if self.answer() is not None:
            return None
        hits = [i for i, r in enumerate(self.ranges) if r.state == "done" and self.hit(i) is not None]
        lowest_hit = min(hits, default=len(self.ranges))
        index = next((i for i in range(lowest_hit) if self.ranges[i].state == "pending"), None)
        if index == self.subtasks - 1 and any(r.state != "done" for r in self.ranges[:index]):
            return None
        return index

    def params(self, index: int) -> dict[str, object]:
        start, end = self.bounds(index)
        return {"input": self.text, "difficulty": self.difficulty, "start": start, "end": end}


@dataclass
class SubtaskModel:
    subtask_id: str
    provider_id: str
    index: int
    params_json: str
    state: str = "assigned"


def bogus_result(params_json: str) -> bytes:
    """A claim Verify rejects: a nonce of the range that does not meet the difficulty."""
    params = json.loads(params_json)
    text, difficulty = params["input"], params["difficulty"]
    nonce = next(n for n in range(params["start"], params["end"]) if not pow.meets(text, n, difficulty))
    claim = {
        "start": params["start"],
        "end": params["end"],
        "nonce": nonce,
        "hash": pow.digest(text, nonce).hex(),
    }
    return json.dumps(claim).encode()


SUBMISSIONS = ("honest", "honest", "honest", "wrong claim", "wrong sha256", "bad name")


class RequestorMachine(RuleBasedStateMachine):
    harness: ClassVar[Harness]
    seen: ClassVar[Counter[str]] = Counter()  # what the examples reached, printed after the run

    def __init__(self) -> None:
        super().__init__()
        self.example = next(self.harness.examples)
        self.ids = [f"m{self.example}-p{i}" for i in range(PROVIDERS)]
        self.wires: dict[str, RawProvider] = {}
        self.offers: dict[str, str] = {}  # joined provider -> the environment it offers
        self.task: TaskModel | None = None
        self.subtasks: dict[str, SubtaskModel] = {}
        self.plan_dir: Path | None = None

    # helpers

    @property
    def model(self) -> TaskModel:
        assert self.task is not None
        return self.task

    def wire(self, provider_id: str) -> RawProvider:
        if provider_id not in self.wires:
            self.wires[provider_id] = RawProvider(
                self.harness.loop, HOST, self.harness.port, PROVIDER_TOKEN, provider_id
            )
        return self.wires[provider_id]

    def live(self) -> list[SubtaskModel]:
        return [s for s in self.subtasks.values() if s.state == "assigned"]

    def failures(self) -> int:
        given_back = sum(s.state in ("rejected", "failed", "expired") for s in self.subtasks.values())
        return given_back - len(self.model.forgiven)

    def maybe_finish(self) -> None:
        task = self.model
        live = any(r.state == "assigned" for r in task.ranges)
        if task.state == "active" and not live and task.next_pending() is None:
            task.state = "finished"
            self.seen["task finished"] += 1

    def abort(self, state: str) -> None:
        self.model.state = state
        for subtask in self.live():
            subtask.state = "aborted"

    def give_back(self, subtask: SubtaskModel, state: str, *, blamed: bool) -> None:
        """A subtask leaves its provider: its range is pending again, the failure budget shrinks (the
        provider's own too when it is `blamed`)."""
        if subtask.provider_id in self.model.barred | self.model.refused:
            self.model.forgiven.add(subtask.subtask_id)
        if blamed:
            self.model.failures_by[subtask.provider_id] += 1
            if self.model.failures_by[subtask.provider_id] >= MAX_PROVIDER_FAILURES:
                self.model.barred.add(subtask.provider_id)
        subtask.state = state
        self.seen[f"subtask {state}"] += 1
        self.model.ranges[subtask.index] = Range()
        if self.failures() > MAX_FAILURES:
            self.abort("failed")
        self.maybe_finish()

    def expected_owner_status(self, provider_id: str, subtask_id: str) -> Status:
        subtask = self.subtasks.get(subtask_id)
        if subtask is None or subtask.provider_id != provider_id:
            return Status.NOT_FOUND
        if subtask.state != "assigned":
            return Status.FAILED_PRECONDITION
        return Status.OK

    def pick(self, data: st.DataObject) -> tuple[str, str]:
        """A provider and a subtask for a call about a subtask: mostly a live one and its owner."""
        unknown = f"{self.model.task_id}-unknown"
        live = [s.subtask_id for s in self.live()]
        anything = st.sampled_from([*self.subtasks, unknown])
        subtask_id = data.draw(st.one_of(st.sampled_from(live), anything) if live else anything, "subtask")
        owner = self.subtasks[subtask_id].provider_id if subtask_id in self.subtasks else self.ids[0]
        others = [p for p in self.ids if p != owner]
        provider_id = data.draw(st.sampled_from([owner, owner, owner, *others]), "provider")
        return provider_id, subtask_id

    # rules

    @initialize(text=st.sampled_from(TEXTS), difficulty=st.sampled_from([6, 8]), subtasks=st.integers(1, 4))
    def submit_task(self, text: str, difficulty: int, subtasks: int) -> None:
        params = {"input": text, "difficulty": difficulty, "subtasks": subtasks}
        task_id = self.harness.control.submit("tutorialapp", "local", params).value().task_id
        self.task = TaskModel(task_id, text, difficulty, subtasks)
        (plan_file,) = self.harness.node.data_dir.glob(f"*/*/{task_id}/{PLAN_FILE}")
        self.plan_dir = plan_file.parent
        for provider_id in self.ids[:2]:  # two providers start joined; the rules join and leave more
            self.wire(provider_id).join(envs=["local"], capacity=CAPACITY).value()
            self.offers[provider_id] = "local"

    @rule(p=st.integers(0, PROVIDERS - 1), env=st.sampled_from(["local", "local", "wasm"]))
    def join(self, p: int, env: str) -> None:
        provider_id = self.ids[p]
        reply = self.wire(provider_id).join(envs=[env], capacity=CAPACITY)
        assert reply.status is Status.OK, reply
        assert reply.value().lease_ms == 600_000
        self.offers[provider_id] = env

    @rule(p=st.integers(0, PROVIDERS - 1), slots=st.integers(0, 3))
    def request_work(self, p: int, slots: int) -> None:
        self._request_work(self.ids[p], slots)

    @precondition(lambda self: self.offers)
    @rule(slots=st.integers(0, 3), data=st.data())
    def a_joined_provider_requests_work(self, slots: int, data: st.DataObject) -> None:
        """As request_work, from a joined provider (the common case, so stories move on)."""
        self._request_work(data.draw(st.sampled_from(sorted(self.offers)), "joined provider"), slots)

    def _request_work(self, provider_id: str, slots: int) -> None:
        reply = self.wire(provider_id).request_work(slots=slots, wait_ms=0)
        if provider_id not in self.offers:
            assert reply.status is Status.FAILED_PRECONDITION, reply
            return
        expected: list[int] = []
        task = self.model
        room = CAPACITY - sum(s.provider_id == provider_id for s in self.live())
        if (
            task.state == "active"
            and self.offers[provider_id] == task.env
            and provider_id not in task.barred | task.refused
        ):
            while len(expected) < min(max(1, slots), room):
                index = task.next_pending()
                if index is None:
                    self.maybe_finish()
                    break
                task.ranges[index] = Range("assigned")
                expected.append(index)
        assignments = reply.value().assignments
        assert [json.loads(a.subtask_params_json) for a in assignments] == [task.params(i) for i in expected]
        for assignment, index in zip(assignments, expected, strict=True):
            assert assignment.task_id == task.task_id and assignment.env_id == task.env
            task.ranges[index].subtask_id = assignment.subtask_id
            self.subtasks[assignment.subtask_id] = SubtaskModel(
                assignment.subtask_id, provider_id, index, assignment.subtask_params_json
            )

    @rule(p=st.integers(0, PROVIDERS - 1), data=st.data())
    def heartbeat(self, p: int, data: st.DataObject) -> None:
        provider_id = self.ids[p]
        candidates = [*self.subtasks, f"{self.model.task_id}-unknown"]
        named = data.draw(st.lists(st.sampled_from(candidates), max_size=4, unique=True), "heartbeat ids")
        reply = self.wire(provider_id).heartbeat(named)
        if provider_id not in self.offers:
            assert reply.status is Status.FAILED_PRECONDITION, reply
            return
        held = {s.subtask_id for s in self.live() if s.provider_id == provider_id}
        assert list(reply.value().cancelled_subtask_ids) == [sid for sid in named if sid not in held]

    @precondition(lambda self: self.task is not None)
    @rule(kind=st.sampled_from(SUBMISSIONS), data=st.data())
    def submit_result(self, kind: str, data: st.DataObject) -> None:
        self._submit_result(*self.pick(data), kind)

    @precondition(lambda self: any(s.state == "assigned" for s in self.subtasks.values()))
    @rule(data=st.data())
    def an_owner_delivers_an_honest_result(self, data: st.DataObject) -> None:
        """As submit_result, honest and from the owner of a live subtask (the common case)."""
        subtask = data.draw(st.sampled_from(self.live()), "live subtask")
        self._submit_result(subtask.provider_id, subtask.subtask_id, "honest")

    def _result(self, subtask_id: str, kind: str) -> ResultFile:
        subtask = self.subtasks.get(subtask_id)
        params_json = subtask.params_json if subtask else json.dumps(self.model.params(0))
        return {
            "honest": ResultFile("result.json", honest_result(params_json)),
            "wrong claim": ResultFile("result.json", bogus_result(params_json)),
            "wrong sha256": ResultFile("result.json", honest_result(params_json), announced_sha256="0" * 64),
            "bad name": ResultFile("../result.json", honest_result(params_json)),
        }[kind]

    def _submit_result(self, provider_id: str, subtask_id: str, kind: str) -> None:
        reply = self.wire(provider_id).submit(subtask_id, self._result(subtask_id, kind))
        verdict = reply.message or npb.SubmitReply()
        self._judged(provider_id, subtask_id, kind, reply.status, verdict.verdict, verdict.reason)

    @precondition(lambda self: self.task is not None)
    @rule(data=st.data())
    def submit_results(self, data: st.DataObject) -> None:
        """Several results in one SubmitResults call: each verdict is what its own SubmitResult would have
        answered, a refusal included, and the model takes the results in the order sent."""
        provider_id, first = self.pick(data)
        others = [*self.subtasks, f"{self.model.task_id}-unknown"]
        named = [first, *data.draw(st.lists(st.sampled_from(others), max_size=3), "more subtasks")]
        named = list(dict.fromkeys(named))  # one result per subtask in a call
        kinds = [data.draw(st.sampled_from(SUBMISSIONS), f"kind of {subtask_id}") for subtask_id in named]
        if self.failures() + len(named) > MAX_FAILURES:
            # A failure that ends the task races the results still arriving: keep this call honest.
            kinds = ["honest"] * len(named)
        reply = self.wire(provider_id).submit_results(
            [
                (subtask_id, self._result(subtask_id, kind))
                for subtask_id, kind in zip(named, kinds, strict=True)
            ]
        )
        verdicts = {verdict.subtask_id: verdict for verdict in reply.value()}
        assert sorted(verdicts) == sorted(named), (verdicts, named)
        self.seen["results submitted together"] += 1
        for subtask_id, kind in zip(named, kinds, strict=True):
            verdict = verdicts[subtask_id]
            status = Status(verdict.status)
            self._judged(provider_id, subtask_id, kind, status, verdict.verdict, verdict.reason)

    def _judged(
        self, provider_id: str, subtask_id: str, kind: str, status: Status, verdict: str, reason: str
    ) -> None:
        """Check the answer to a result of `kind` against the model, and move the model on."""
        subtask = self.subtasks.get(subtask_id)
        expected = self.expected_owner_status(provider_id, subtask_id)
        assert status is expected, (status, reason, expected)
        if expected is not Status.OK:
            return
        assert subtask is not None
        if kind == "honest":
            assert verdict == "accepted", (verdict, reason)
            subtask.state = "accepted"
            self.seen["subtask accepted"] += 1
            self.model.ranges[subtask.index].state = "done"
            self.maybe_finish()
        elif kind == "wrong claim":
            assert verdict == "rejected" and "fewer than" in reason, (verdict, reason)
            self.give_back(subtask, "rejected", blamed=False)
            self.model.barred.add(provider_id)
        else:
            assert verdict == "rejected", (verdict, reason)
            self.give_back(subtask, "failed", blamed=True)

    @precondition(lambda self: self.task is not None)
    @rule(refuse=st.booleans(), data=st.data())
    def report_failure(self, refuse: bool, data: st.DataObject) -> None:
        provider_id, subtask_id = self.pick(data)
        reason = "refused: not on my whitelist" if refuse else "RuntimeError: out of disk"
        reply = self.wire(provider_id).report_failure(subtask_id, reason)
        expected = self.expected_owner_status(provider_id, subtask_id)
        assert reply.status is expected, (reply, expected)
        if expected is Status.OK:
            self.give_back(self.subtasks[subtask_id], "failed", blamed=True)
            if refuse:
                self.model.refused.add(provider_id)

    @rule(p=st.integers(0, PROVIDERS - 1))
    def leave(self, p: int) -> None:
        provider_id = self.ids[p]
        assert self.wire(provider_id).leave().status is Status.OK
        self.offers.pop(provider_id, None)
        for subtask in self.live():
            if subtask.provider_id == provider_id and self.model.state == "active":
                self.give_back(subtask, "expired", blamed=False)

    @precondition(lambda self: self.task is not None)
    @rule(data=st.data())
    def expire_a_lease(self, data: st.DataObject) -> None:
        live = self.live()
        if not live:
            return
        subtask = data.draw(st.sampled_from(live), "stale lease")
        node = self.harness.node
        with node.store.transaction() as db:
            db.execute("UPDATE subtasks SET deadline_ms = 0 WHERE subtask_id = ?", (subtask.subtask_id,))
        holder = node.store.subtask(subtask.subtask_id)
        assert holder is not None
        node.core.handle(LeasesRenewed(holder.provider_id, (subtask.subtask_id,), 0))  # the core's copy
        self.harness.loop.run(node.tick(), "tick")
        self.give_back(subtask, "expired", blamed=True)

    @precondition(lambda self: self.task is not None)
    @rule(known=st.booleans(), roll=ROLL)
    def abort_task(self, known: bool, roll: int) -> None:
        if roll != RARE:  # aborting ends the example's story: keep it rare
            return
        task_id = self.model.task_id if known else f"{self.model.task_id}-nope"
        reply = self.harness.control.abort(task_id)
        assert reply.status is (Status.OK if known else Status.NOT_FOUND), reply
        if known and self.model.state == "active":
            self.abort("aborted")

    @precondition(lambda self: self.task is not None)
    @rule(roll=ROLL)
    def restart_requestor(self, roll: int) -> None:
        """The requestor restarts on its data dir: nothing changes but what lived only in memory."""
        if roll != RARE:  # a restart costs an app server start: keep it rare
            return
        for wire in self.wires.values():
            wire.close()
        self.wires.clear()
        self.harness.restart()
        self.seen["requestor restarted"] += 1
        holding = {s.provider_id for s in self.live()}
        self.offers = {p: env for p, env in self.offers.items() if p in holding}
        self.model.refused.clear()
        self.model.failures_by.clear()

    # the model against the store, the control API and the app's plan

    @invariant()
    def model_matches_the_node(self) -> None:
        if self.task is None:
            return
        task = self.model
        store = self.harness.node.store
        stored = {s.subtask_id: s.state for s in store.subtasks(task_id=task.task_id)}
        assert stored == {sid: s.state for sid, s in self.subtasks.items()}
        row = store.task(task.task_id)
        assert row is not None and row.state == task.state, (row, task.state)
        status = self.harness.control.status(task.task_id).value()
        assert status.state == task.state
        counts: dict[str, int] = {}
        for subtask in self.subtasks.values():
            counts[subtask.state] = counts.get(subtask.state, 0) + 1
        assert dict(status.subtasks_by_state) == counts
        if task.state == "active":
            assert self.plan_dir is not None
            plan = Plan.load(self.plan_dir)
            assert [(r.state.value, r.subtask_id) for r in plan.ranges] == [
                (r.state, r.subtask_id) for r in task.ranges
            ]
        if task.state == "finished":
            answer = task.answer()
            assert answer is not None
            collected = json.loads((Path(status.outputs_dir) / "result.json").read_text())
            assert collected == {"nonce": answer, "hash": pow.digest(task.text, answer).hex()}

    def teardown(self) -> None:
        if self.task is not None:
            self.seen[f"task ended {self.task.state}"] += 1
            self.harness.control.abort(self.task.task_id)
        for wire in self.wires.values():
            wire.close()


def test_the_requestor_follows_its_state_machine(harness: Harness) -> None:
    RequestorMachine.harness = harness
    run_state_machine_as_test(
        RequestorMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print("reached:", dict(sorted(RequestorMachine.seen.items())))
    assert RequestorMachine.seen["task finished"] > 0, "no example finished a task: the rules starve"


def test_work_given_back_after_the_answer_is_certain_finishes_the_task(harness: Harness) -> None:
    """The shrunk example the machine found: range 0 holds the answer, range 1 is given back after it.

    The task must finish then and there, not when some provider next asks for work (perhaps never).
    """
    # range 0 holds nonce 12; the open-ended range 2 is not handed out while ranges 0 and 1 are out
    params = {"input": "beta", "difficulty": 6, "subtasks": 3}
    task_id = harness.control.submit("tutorialapp", "local", params).value().task_id
    provider = RawProvider(harness.loop, HOST, harness.port, PROVIDER_TOKEN, "lone-provider")
    try:
        provider.join(capacity=2).value()
        low, high = provider.request_work(slots=2).value().assignments
        honest = ResultFile("result.json", honest_result(low.subtask_params_json))
        assert provider.submit(low.subtask_id, honest).value().verdict == "accepted"
        assert harness.control.status(task_id).value().state == "active"  # range 1 is still out
        provider.report_failure(high.subtask_id, "RuntimeError: out of disk").value()
        status = harness.control.status(task_id).value()
        assert status.state == "finished"
        assert dict(status.subtasks_by_state) == {"accepted": 1, "failed": 1}
    finally:
        harness.control.abort(task_id)
        provider.close()
