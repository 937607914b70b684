"""RequestorApp against the protocol: arbitrary interleavings of every RPC, valid and invalid, over real gRPC.

The machine is the conformance suite's `RequestorMachine` (every RPC with valid and malformed ids, bad
JSON, honest results from the app's own ProviderApp and mutated ones; each status predicted by
`RequestorModel`), run against the app's build with its actions weighted as one rule per RPC would
be, and with what the protocol tests require on top:

- the app must accept every task of valid parameters (its `task_params`), where the conformance suite lets
  an app refuse parameters that the schema's types allow;
- when NextSubtask hands out nothing, HasPendingSubtasks right after says false and a complete task has
  its result in task_outputs/;
- an empty, garbage or half-truncated result never verifies (the conformance suite judges truncations by
  the task's outcome instead);
- RunBenchmark, Shutdown (exit code 0, UNAVAILABLE afterwards, Shutdown again), a restart on the same work
  dir and a kill-and-restart come between any other calls, and the app loses no task;
- models that are wrong in one way make the machine fail (the test of the test).

One requestor server (and the session's honest provider) serves a whole machine run; every example uses
fresh task ids. See docs/protocol.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from grpclib.const import Status
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule, run_state_machine_as_test

from runtime.conformance.model import Delivery, RequestorModel, SubtaskModel, SubtaskState
from runtime.conformance.mutations import MUTATIONS
from runtime.conformance.properties import Checks, PropertyViolation
from runtime.conformance.requestor_machine import ACTIONS, RequestorMachine
from runtime.conformance.session import Session
from runtime.conformance.strategies import one_in, weighted
from runtime.conformance.wire import deliver, stop

from .harness import check_score, machine_settings

NEVER_VERIFIED = frozenset({"empty", "garbage", "first half"})
"""The kinds of mutated result that `never_verified_results` makes: no app may accept any of them."""


def never_verified_results(honest: bytes) -> list[tuple[str, bytes]]:
    """Results that are not the honest one, by kind: empty, garbage, the first half (each content once)."""
    candidates = [
        ("empty", b""),
        ("garbage", b"\x00\xffnot the result\xfe"),
        ("first half", honest[: len(honest) // 2]),
    ]
    kinds: dict[bytes, str] = {}
    for kind, content in candidates:
        kinds.setdefault(content, kind)
    return [(kind, content) for content, kind in kinds.items() if content != honest]


class ProtocolRequestorMachine(RequestorMachine):
    """The conformance requestor machine with the model given, stricter checks and server restarts."""

    def __init__(self, session: Session, model: RequestorModel) -> None:
        super().__init__(session, Checks())
        self.model = model
        self.refusal_allowed = False
        self.benchmarks_left = 0
        self.restarts_left = 0

    @initialize(may_benchmark=one_in(4), may_restart=one_in(3))
    def budget_slow_rules(self, may_benchmark: bool, may_restart: bool) -> None:
        self.benchmarks_left = int(may_benchmark)
        self.restarts_left = int(may_restart)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One of the conformance machine's actions, as if each were a rule of its own: equally weighted,
        in name order (Hypothesis leans to the first). The conformance weights favour finishing tasks and
        leave rarer sequences, such as AbortTask twice on one task, to hundreds of examples."""
        possible = sorted((name, 1) for name, _, when in ACTIONS if when(self))
        getattr(self, data.draw(weighted(possible), label="action"))(data)

    # -- CreateTask: valid parameters must be accepted ---------------------------------------------

    def create_task_off_schema(self, data: st.DataObject) -> None:
        """Parameters outside the schema: the one CreateTask that may be refused where the model says OK."""
        self.refusal_allowed = True
        try:
            super().create_task_off_schema(data)
        finally:
            self.refusal_allowed = False

    def _create(self, task_id: str, max_subtasks_count: int, params_json: str) -> bool:
        """CreateTask as the conformance machine checks it; besides, valid parameters are never refused."""
        expected = self.model.expect_create_task(task_id, max_subtasks_count, params_json)
        created = super()._create(task_id, max_subtasks_count, params_json)
        self.protocol(
            created or expected is not Status.OK or self.refusal_allowed,
            f"CreateTask({task_id!r}, {max_subtasks_count}, {params_json!r}): the protocol says OK for valid "
            "parameters, the app answered INVALID_ARGUMENT",
        )
        return created

    # -- NextSubtask: nothing handed out means nothing pending -----------------------------------

    def _next(self, task_id: str, subtask_id: str, node_id: str = "node") -> SubtaskModel | None:
        """NextSubtask; when it hands out nothing, HasPendingSubtasks must say so too right after."""
        expected = self.model.expect_next_subtask(task_id, subtask_id)
        subtask = super()._next(task_id, subtask_id, node_id)
        if subtask is None and expected is Status.OK:
            pending = self._has_pending(task_id)
            self.checks.check(
                "has_pending_implies_next_subtask",
                pending is False,
                f"NextSubtask({task_id!r}, {subtask_id!r}) handed out nothing, yet HasPendingSubtasks "
                "says true",
            )
            self._check_complete(task_id)
        return subtask

    # -- mutated results: these never verify -----------------------------------------------------

    def _deliver_mutated(
        self, task_id: str, subtask_id: str, data: st.DataObject, kinds: Sequence[str] = MUTATIONS
    ) -> None:
        """A mutation of one of the conformance machine's `kinds`, or (as often) an empty, garbage or
        half-truncated file, which must never verify (see `_verify`)."""
        if not data.draw(st.booleans(), label="a mutation that never verifies"):
            super()._deliver_mutated(task_id, subtask_id, data, kinds)
            return
        honest = self.honest(task_id, subtask_id, self.model.tasks[task_id].subtasks[subtask_id])
        kind, content = data.draw(st.sampled_from(never_verified_results(honest.content)))
        deliver(self.task_dir_of(task_id), subtask_id, honest.name, content)
        self.model.results_delivered(task_id, subtask_id, Delivery.MUTATED)
        described = f"{kind} ({len(honest.content)} -> {len(content)} bytes)"
        self.mutations[(task_id, subtask_id)] = (kind, described)

    def _verify(self, task_id: str, subtask_id: str) -> None:
        """Verify as the conformance machine checks it; besides, a result of NEVER_VERIFIED is never SUCCESS
        (the conformance machine lets any truncation verify: it may be immaterial to some app)."""
        task = self.model.tasks.get(task_id)
        subtask = task.subtasks.get(subtask_id) if task is not None else None
        kind, mutation = self.mutations.get((task_id, subtask_id), ("", ""))
        judged = (
            subtask is not None
            and subtask.state is SubtaskState.ASSIGNED
            and subtask.delivery is Delivery.MUTATED
            and kind in NEVER_VERIFIED
        )
        super()._verify(task_id, subtask_id)
        if judged and subtask is not None:
            self.checks.check(
                "verify_rejects_mutated_result",
                subtask.state is not SubtaskState.VERIFIED,  # the model's record of a SUCCESS
                f"Verify({task_id!r}, {subtask_id!r}) of a mutated result ({mutation}) gave SUCCESS",
            )

    # -- RunBenchmark, Shutdown and restarts, between any other calls ------------------------------

    @precondition(lambda self: self.benchmarks_left > 0)
    @rule()
    def run_benchmark(self) -> None:
        self.benchmarks_left -= 1
        reply = self.wire.run_benchmark()
        if self.expect("RunBenchmark", reply, self.model.expect_run_benchmark()):
            check_score(self.checks, "RunBenchmark", reply.value().score)

    @precondition(lambda self: self.restarts_left > 0 and not self.model.shut_down)
    @rule()
    def shutdown(self) -> None:
        """Shutdown: every later call gets UNAVAILABLE (from the draining server, or a refused connection)."""
        self.restarts_left -= 1
        self.expect("Shutdown", self.wire.shutdown(), self.model.expect_shutdown())
        self.model.server_shut_down()
        requestor = self.session.requestor
        code = requestor.wait_exit()
        self.protocol(code == 0, f"the requestor exited with {code} after Shutdown: {requestor.log_tail()}")

    @precondition(lambda self: self.model.shut_down)
    @rule()
    def shutdown_again(self) -> None:
        self.expect("Shutdown after Shutdown", self.wire.shutdown(), self.model.expect_shutdown())

    @precondition(lambda self: self.model.shut_down)
    @rule()
    def restart_after_shutdown(self) -> None:
        """A new server on the same work dir takes over every task where it stood."""
        self.session.requestor.start()
        self.model.server_restarted()

    @precondition(lambda self: self.restarts_left > 0 and not self.model.shut_down)
    @rule()
    def crash_and_restart(self) -> None:
        """Killed between two calls, the app loses nothing: its state lives in the work dir."""
        self.restarts_left -= 1
        self.session.requestor.kill()
        self.session.requestor.start()


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture
def requestor_session(session: Session) -> Iterator[Session]:
    """The session with its requestor and its honest provider started."""
    session.requestor_wire()
    session.honest.server.start()
    yield session


def machine(session: Session, model: type[RequestorModel]) -> type[ProtocolRequestorMachine]:
    """The machine class Hypothesis runs: a fresh `model` per example, against the session's requestor."""

    class Machine(ProtocolRequestorMachine):
        def __init__(self) -> None:
            super().__init__(session, model())

    Machine.__name__ = f"RequestorMachine[{session.target.label()}, {model.__name__}]"
    return Machine


@pytest.mark.slow
def test_requestor_app_follows_the_protocol(requestor_session: Session) -> None:
    run_state_machine_as_test(machine(requestor_session, RequestorModel), settings=machine_settings())
    requestor_session.requestor_wire()  # an example may end with the requestor shut down
    assert stop(requestor_session.requestor) == 0, requestor_session.requestor.log_tail()
    assert stop(requestor_session.honest.server) == 0, requestor_session.honest.server.log_tail()


# -- the test of the test: models that are wrong in one way must make the machine fail ---------------


class VerifyBeforeDeliveryModel(RequestorModel):
    """Wrong: believes Verify works before the node delivered any result."""

    def expect_verify(self, task_id: str, subtask_id: str) -> Status:
        expected = super().expect_verify(task_id, subtask_id)
        task = self.tasks.get(task_id)
        subtask = task.subtasks.get(subtask_id) if task else None
        if expected is Status.FAILED_PRECONDITION and subtask and subtask.state is SubtaskState.ASSIGNED:
            return Status.OK
        return expected


class GlobalSubtaskIdsModel(RequestorModel):
    """Wrong: believes a subtask id may be used only once across all tasks."""

    def expect_next_subtask(self, task_id: str, subtask_id: str) -> Status:
        expected = super().expect_next_subtask(task_id, subtask_id)
        used = any(subtask_id in task.subtasks for task in self.tasks.values())
        return Status.ALREADY_EXISTS if expected is Status.OK and used else expected


class AbortTaskOnceModel(RequestorModel):
    """Wrong: believes aborting an aborted task is refused."""

    def expect_abort_task(self, task_id: str) -> Status:
        expected = super().expect_abort_task(task_id)
        task = self.tasks.get(task_id)
        return Status.FAILED_PRECONDITION if expected is Status.OK and task and task.aborted else expected


WRONG_MODELS: dict[str, tuple[type[RequestorModel], str]] = {
    "verify before delivery": (VerifyBeforeDeliveryModel, "Verify("),
    "global subtask ids": (GlobalSubtaskIdsModel, "NextSubtask("),
    "abort task once": (AbortTaskOnceModel, "AbortTask("),
}


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG_MODELS))
def test_a_wrong_model_makes_the_machine_fail(requestor_session: Session, wrong: str) -> None:
    model, failing_call = WRONG_MODELS[wrong]
    # Each wrong model is caught within ~150 examples (measured); it stops at the first failure.
    quick = machine_settings(
        max_examples=1000, database=None, phases=[Phase.generate], report_multiple_bugs=False
    )
    with pytest.raises(PropertyViolation) as caught:
        run_state_machine_as_test(machine(requestor_session, model), settings=quick)
    assert caught.value.property_name == "requestor_protocol"
    assert failing_call in str(caught.value)
