"""RequestorApp against the protocol: arbitrary interleavings of every RPC, valid and invalid, over real gRPC.

One requestor server (and one persistent provider that computes honest results) serves a whole
machine run; every example uses fresh task ids. `RequestorModel` predicts the status of each reply
and the machine fails on the first reply the protocol does not allow. See docs/protocol.md.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpclib.const import Status
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runtime.conformance.model import (
    Delivery,
    RequestorModel,
    SubtaskModel,
    SubtaskState,
    Verdict,
    json_object,
    valid_id,
)
from runtime.conformance.strategies import BAD_IDS, BAD_JSON, MAX_SUBTASKS, NODE_IDS, one_in

from .apps_under_test import AppUnderTest
from .harness import (
    SUBTASK_INPUTS,
    SUBTASK_OUTPUTS,
    TASK_INPUTS,
    TASK_OUTPUTS,
    AppServer,
    Loop,
    ProtocolMismatch,
    ProviderWire,
    RequestorWire,
    copy_resources,
    deliver,
    expect,
    machine_settings,
    output_file,
    stop,
)

ENV_IDS = {"docker_cpu", "docker_gpu", "wasm"}


def mutations(honest: bytes) -> list[bytes]:
    """Results that are not the honest one: empty, garbage, truncated."""
    candidates = [b"", b"\x00\xffnot the result\xfe", honest[: len(honest) // 2]]
    return [c for c in dict.fromkeys(candidates) if c != honest]


class RequestorEnv:
    """What a machine run shares across examples: the requestor under test and an honest provider."""

    def __init__(self, app: AppUnderTest, loop: Loop, root: Path) -> None:
        self.app = app
        self.requestor = AppServer(loop, app.command, "requestor", root / "requestor")
        self.provider = AppServer(loop, app.command, "provider", root / "provider", persistent=True)
        self.wire = RequestorWire(self.requestor)
        self._provider_wire = ProviderWire(self.provider)
        self._ids = itertools.count()
        self._honest: dict[tuple[str, str], tuple[str, bytes]] = {}

    def fresh_id(self, kind: str) -> str:
        """An id never used before on this server."""
        return f"{kind}-{next(self._ids)}"

    def task_dir(self, task_id: str) -> Path:
        return self.requestor.work_dir / task_id

    def ensure_requestor(self) -> None:
        if not self.requestor.running:
            self.requestor.start()

    def honest_result(self, task_id: str, subtask_id: str, subtask: SubtaskModel) -> tuple[str, bytes]:
        """The file name and content of the subtask's result, computed by the app's own ProviderApp."""
        key = (task_id, subtask_id)
        if key not in self._honest:
            copy_resources(subtask.resources, self.task_dir(task_id), self.provider.work_dir)
            reply = self._provider_wire.compute(task_id, subtask_id, subtask.params_json)
            expect(f"Compute of subtask {subtask_id} as NextSubtask gave it", reply, Status.OK)
            output = output_file(self.provider.work_dir, reply.value().output_filepath)
            self._honest[key] = (output.name, output.read_bytes())
        return self._honest[key]


class RequestorMachine(RuleBasedStateMachine):
    """Drives one requestor server with any sequence of calls and checks each reply against the model.

    Ids are chosen from lists in creation order (never sorted: fresh ids differ when Hypothesis
    replays an example, and their order must not).
    """

    def __init__(self, env: RequestorEnv, model: RequestorModel) -> None:
        super().__init__()
        self.env = env
        self.model = model
        self.wire = env.wire
        self.free_task_ids: list[str] = []  # ids whose CreateTask failed: they are still free
        self.benchmarks_left = 0
        self.restarts_left = 0
        env.ensure_requestor()

    @initialize(may_benchmark=one_in(4), may_restart=one_in(3))
    def budget_slow_rules(self, may_benchmark: bool, may_restart: bool) -> None:
        self.benchmarks_left = int(may_benchmark)
        self.restarts_left = int(may_restart)

    @initialize(data=st.data())
    def create_first_task(self, data: st.DataObject) -> None:
        """Every example starts with a task, so that most steps reach the task and subtask states."""
        self.create_task(data)

    # -- choosing ids -------------------------------------------------------------------------

    def task_ids(self) -> st.SearchStrategy[str]:
        """Mostly this example's tasks; sometimes an unknown id or a malformed one."""
        known = list(self.model.tasks)
        choices: list[st.SearchStrategy[str]] = [st.sampled_from(known)] * 4 if known else []
        return st.one_of([*choices, st.just(self.env.fresh_id("task")), BAD_IDS])

    def subtask_ids(self, task_id: str) -> st.SearchStrategy[str]:
        """Mostly the task's subtasks; else a fresh id, another task's, a malformed one."""
        task = self.model.tasks.get(task_id)
        own = list(task.subtasks) if task is not None else []
        others = list(
            dict.fromkeys(sid for tid, t in self.model.tasks.items() if tid != task_id for sid in t.subtasks)
        )
        choices: list[st.SearchStrategy[str]] = [st.just(self.env.fresh_id("subtask"))]
        if own:
            choices += [st.sampled_from(own)] * 4
        if others:
            choices.append(st.sampled_from(others))
        choices.append(BAD_IDS)
        return st.one_of(choices)

    def known_subtasks(self) -> list[tuple[str, str]]:
        return [(tid, sid) for tid, task in self.model.tasks.items() for sid in task.subtasks]

    def example_subtasks(self) -> list[st.SearchStrategy[tuple[str, str]]]:
        """(task id, subtask id) of this example: an assigned one (3 in 5), or any."""
        known = self.known_subtasks()
        assigned = [(tid, sid) for tid, sid in known if sid in self.model.tasks[tid].assigned()]
        choices = [st.sampled_from(assigned)] * 3 if assigned else []
        return choices + ([st.sampled_from(known)] * 2 if known else [])

    def task_and_subtask_ids(self) -> st.SearchStrategy[tuple[str, str]]:
        """Mostly a subtask of this example; else any task id with any subtask id."""
        anything = self.task_ids().flatmap(
            lambda task_id: st.tuples(st.just(task_id), self.subtask_ids(task_id))
        )
        return st.one_of([*self.example_subtasks(), anything])

    def has_subtasks(self) -> bool:
        return bool(self.known_subtasks())

    def active_tasks(self) -> list[str]:
        return [tid for tid, task in self.model.tasks.items() if not task.aborted]

    # -- CreateTask ---------------------------------------------------------------------------

    @rule(data=st.data())
    def create_task(self, data: st.DataObject) -> None:
        choices = [st.just(self.env.fresh_id("task"))]
        if self.free_task_ids:
            choices.append(st.sampled_from(self.free_task_ids))
        task_id = data.draw(st.one_of(choices))
        self._create(task_id, data.draw(MAX_SUBTASKS), json.dumps(data.draw(self.env.app.task_params)))

    @rule(data=st.data())
    def create_task_bad_request(self, data: st.DataObject) -> None:
        """One fault: a task id in use or malformed, max_subtasks_count < 1, or params not a JSON object."""
        task_id, max_subtasks = self.env.fresh_id("task"), 1
        params = json.dumps(data.draw(self.env.app.task_params))
        faults = ["id", "max_subtasks_count", "json"] + (["existing"] if self.model.tasks else [])
        fault = data.draw(st.sampled_from(faults))
        if fault == "existing":
            task_id = data.draw(st.sampled_from(list(self.model.tasks)))
        elif fault == "id":
            task_id = data.draw(BAD_IDS)
        elif fault == "max_subtasks_count":
            max_subtasks = data.draw(st.integers(-(2**31), 0))
        else:
            params = data.draw(BAD_JSON)
        self._create(task_id, max_subtasks, params)

    def _create(self, task_id: str, max_subtasks_count: int, params_json: str) -> None:
        expected = self.model.expect_create_task(task_id, max_subtasks_count, params_json)
        reply = self.wire.create_task(task_id, max_subtasks_count, params_json)
        if not expect(f"CreateTask({task_id!r}, {max_subtasks_count})", reply, expected):
            if valid_id(task_id) and task_id not in self.model.tasks and task_id not in self.free_task_ids:
                self.free_task_ids.append(task_id)
            return
        created = reply.value()
        if created.env_id not in ENV_IDS:
            raise ProtocolMismatch(f"CreateTask: env_id {created.env_id!r} is none of {sorted(ENV_IDS)}")
        if not json_object(created.prerequisites_json):
            raise ProtocolMismatch(f"CreateTask: prerequisites_json {created.prerequisites_json!r}")
        for name in (TASK_INPUTS, SUBTASK_INPUTS, TASK_OUTPUTS, SUBTASK_OUTPUTS):
            if not (self.env.task_dir(task_id) / name).is_dir():
                raise ProtocolMismatch(f"CreateTask: the task dir has no {name}/")
        self.model.task_created(task_id)
        if task_id in self.free_task_ids:
            self.free_task_ids.remove(task_id)

    # -- NextSubtask and HasPendingSubtasks ----------------------------------------------------

    @precondition(lambda self: bool(self.active_tasks()))
    @rule(data=st.data())
    def next_subtask(self, data: st.DataObject) -> None:
        """A new subtask id: fresh, or one that another task uses (ids are unique per task only)."""
        task_id = data.draw(st.sampled_from(self.active_tasks()))
        task = self.model.tasks[task_id]
        elsewhere = [sid for _, sid in self.known_subtasks() if sid not in task.subtasks]
        fresh = st.just(self.env.fresh_id("subtask"))
        subtask_id = data.draw(st.one_of(fresh, fresh, st.sampled_from(elsewhere)) if elsewhere else fresh)
        self._next(task_id, subtask_id, data.draw(NODE_IDS))

    @rule(data=st.data())
    def next_subtask_any_ids(self, data: st.DataObject) -> None:
        """Any task id (unknown, malformed, aborted) with any subtask id (in use, another task's, ...)."""
        task_id = data.draw(self.task_ids())
        self._next(task_id, data.draw(self.subtask_ids(task_id)), data.draw(NODE_IDS))

    def _next(self, task_id: str, subtask_id: str, node_id: str = "node") -> SubtaskModel | None:
        """NextSubtask; when it hands out nothing, HasPendingSubtasks must say so too."""
        expected = self.model.expect_next_subtask(task_id, subtask_id)
        reply = self.wire.next_subtask(task_id, subtask_id, node_id)
        if not expect(f"NextSubtask({task_id!r}, {subtask_id!r})", reply, expected):
            return None
        if not reply.value().HasField("subtask"):
            self._check_has_pending(task_id, after="NextSubtask handed out nothing", must_be=False)
            return None
        subtask = reply.value().subtask
        if not json_object(subtask.subtask_params_json):
            raise ProtocolMismatch(f"NextSubtask: subtask_params_json {subtask.subtask_params_json!r}")
        for name in subtask.resources:
            if not (self.env.task_dir(task_id) / SUBTASK_INPUTS / name).is_file():
                raise ProtocolMismatch(f"NextSubtask: resource {name!r} is not in {SUBTASK_INPUTS}/")
        self.model.subtask_assigned(task_id, subtask_id, subtask.subtask_params_json, list(subtask.resources))
        return self.model.tasks[task_id].subtasks[subtask_id]

    @rule(data=st.data())
    def has_pending_subtasks(self, data: st.DataObject) -> None:
        task_id = data.draw(self.task_ids())
        expected = self.model.expect_has_pending_subtasks(task_id)
        reply = self.wire.has_pending_subtasks(task_id)
        if not expect(f"HasPendingSubtasks({task_id!r})", reply, expected):
            return
        pending = reply.value().has_pending_subtasks
        task = self.model.tasks[task_id]
        if task.aborted and pending:
            raise ProtocolMismatch(f"HasPendingSubtasks: aborted task {task_id!r} has pending subtasks")
        if pending:
            if self._next(task_id, self.env.fresh_id("subtask")) is None:
                raise ProtocolMismatch("HasPendingSubtasks said true, then NextSubtask handed out nothing")
        elif not task.aborted:
            self._check_complete(task_id)

    def _check_has_pending(self, task_id: str, after: str, must_be: bool) -> None:
        reply = self.wire.has_pending_subtasks(task_id)
        expect(f"HasPendingSubtasks({task_id!r})", reply, Status.OK)
        if reply.value().has_pending_subtasks is not must_be:
            raise ProtocolMismatch(f"{after}, yet HasPendingSubtasks says {not must_be}")
        self._check_complete(task_id)

    def _check_complete(self, task_id: str) -> None:
        """A task with no pending work and no assigned subtask is complete: its result is in task_outputs."""
        if self.model.tasks[task_id].assigned():
            return
        outputs = self.env.task_dir(task_id) / TASK_OUTPUTS
        if not any(path.is_file() for path in outputs.rglob("*")):
            raise ProtocolMismatch(f"task {task_id!r} is complete but {TASK_OUTPUTS}/ is empty")

    # -- results and Verify -------------------------------------------------------------------

    @precondition(lambda self: self.has_subtasks())
    @rule(data=st.data())
    def deliver_honest_result(self, data: st.DataObject) -> None:
        task_id, subtask_id = data.draw(st.one_of(self.example_subtasks()))
        subtask = self.model.tasks[task_id].subtasks[subtask_id]
        name, content = self.env.honest_result(task_id, subtask_id, subtask)
        deliver(self.env.task_dir(task_id), subtask_id, name, content)
        self.model.results_delivered(task_id, subtask_id, Delivery.HONEST)

    @precondition(lambda self: self.has_subtasks())
    @rule(data=st.data())
    def deliver_mutated_result(self, data: st.DataObject) -> None:
        """An empty, garbage or truncated file in place of the honest result: it must never verify."""
        task_id, subtask_id = data.draw(st.one_of(self.example_subtasks()))
        subtask = self.model.tasks[task_id].subtasks[subtask_id]
        name, honest = self.env.honest_result(task_id, subtask_id, subtask)
        deliver(self.env.task_dir(task_id), subtask_id, name, data.draw(st.sampled_from(mutations(honest))))
        self.model.results_delivered(task_id, subtask_id, Delivery.MUTATED)

    @rule(data=st.data())
    def verify(self, data: st.DataObject) -> None:
        self._verify(*data.draw(self.task_and_subtask_ids()))

    def _verify(self, task_id: str, subtask_id: str) -> None:
        expected = self.model.expect_verify(task_id, subtask_id)
        reply = self.wire.verify(task_id, subtask_id)
        if not expect(f"Verify({task_id!r}, {subtask_id!r})", reply, expected):
            return
        verdict = Verdict(reply.value().result)
        allowed = self.model.expect_verdicts(task_id, subtask_id)
        if verdict not in allowed:
            delivery = self.model.tasks[task_id].subtasks[subtask_id].delivery
            raise ProtocolMismatch(
                f"Verify of a {delivery.value} result gave {verdict.name} ({reply.value().reason!r}); "
                f"allowed: {sorted(v.name for v in allowed)}"
            )
        self.model.verified(task_id, subtask_id, verdict)

    @precondition(lambda self: bool(self.active_tasks()) and not self.model.shut_down)
    @rule(data=st.data())
    def work_one_subtask(self, data: st.DataObject) -> None:
        """The happy path, so tasks get done: next subtask, honest result, Verify."""
        task_id = data.draw(st.sampled_from(self.active_tasks()))
        subtask_id = self.env.fresh_id("subtask")
        subtask = self._next(task_id, subtask_id)
        if subtask is not None:
            name, content = self.env.honest_result(task_id, subtask_id, subtask)
            deliver(self.env.task_dir(task_id), subtask_id, name, content)
            self.model.results_delivered(task_id, subtask_id, Delivery.HONEST)
            self._verify(task_id, subtask_id)

    # -- DiscardSubtasks, AbortSubtask, AbortTask ------------------------------------------------

    @rule(data=st.data())
    def discard_subtasks(self, data: st.DataObject) -> None:
        task_id = data.draw(self.task_ids())
        subtask_ids = data.draw(st.lists(self.subtask_ids(task_id), max_size=4))
        expected = self.model.expect_discard_subtasks(task_id)
        reply = self.wire.discard_subtasks(task_id, subtask_ids)
        if not expect(f"DiscardSubtasks({task_id!r}, {subtask_ids!r})", reply, expected):
            return
        discarded = list(reply.value().discarded_subtask_ids)
        may = self.model.discardable(task_id, subtask_ids)
        if len(set(discarded)) != len(discarded) or not set(discarded) <= set(may):
            raise ProtocolMismatch(f"DiscardSubtasks discarded {discarded}; only {may} are discardable")
        self.model.discarded(task_id, discarded)

    @rule(data=st.data())
    def abort_subtask(self, data: st.DataObject) -> None:
        task_id, subtask_id = data.draw(self.task_and_subtask_ids())
        expected = self.model.expect_abort_subtask(task_id, subtask_id)
        reply = self.wire.abort_subtask(task_id, subtask_id)
        if expect(f"AbortSubtask({task_id!r}, {subtask_id!r})", reply, expected):
            self.model.subtask_aborted(task_id, subtask_id)

    @rule(data=st.data())
    def abort_task(self, data: st.DataObject) -> None:
        task_id = data.draw(self.task_ids())
        expected = self.model.expect_abort_task(task_id)
        reply = self.wire.abort_task(task_id)
        if expect(f"AbortTask({task_id!r})", reply, expected):
            self.model.task_aborted(task_id)

    # -- RunBenchmark, Shutdown and restarts ----------------------------------------------------

    @precondition(lambda self: self.benchmarks_left > 0)
    @rule()
    def run_benchmark(self) -> None:
        self.benchmarks_left -= 1
        reply = self.wire.run_benchmark()
        if expect("RunBenchmark", reply, self.model.expect_run_benchmark()):
            score = reply.value().score
            if not (math.isfinite(score) and score > 0):
                raise ProtocolMismatch(f"RunBenchmark: score {score} is not positive")

    @precondition(lambda self: self.restarts_left > 0 and not self.model.shut_down)
    @rule()
    def shutdown(self) -> None:
        """Shutdown: every later call gets UNAVAILABLE (from the draining server, or a refused connection)."""
        self.restarts_left -= 1
        expect("Shutdown", self.wire.shutdown(), self.model.expect_shutdown())
        self.model.server_shut_down()
        code = self.env.requestor.wait_exit()
        if code != 0:
            raise ProtocolMismatch(
                f"the requestor exited with {code} after Shutdown: {self.env.requestor.log_tail()}"
            )

    @precondition(lambda self: self.model.shut_down)
    @rule()
    def shutdown_again(self) -> None:
        expect("Shutdown after Shutdown", self.wire.shutdown(), self.model.expect_shutdown())

    @precondition(lambda self: self.model.shut_down)
    @rule()
    def restart_after_shutdown(self) -> None:
        """A new server on the same work dir takes over every task where it stood."""
        self.env.requestor.start()
        self.model.server_restarted()

    @precondition(lambda self: self.restarts_left > 0 and not self.model.shut_down)
    @rule()
    def crash_and_restart(self) -> None:
        """Killed between two calls, the app loses nothing: its state lives in the work dir."""
        self.restarts_left -= 1
        self.env.requestor.kill()
        self.env.requestor.start()


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture
def requestor_env(app: AppUnderTest, loop: Loop, tmp_path: Path) -> Iterator[RequestorEnv]:
    env = RequestorEnv(app, loop, tmp_path)
    env.provider.start()
    env.requestor.start()
    yield env
    env.requestor.close()
    env.provider.close()


def machine(env: RequestorEnv, model: type[RequestorModel]) -> type[RequestorMachine]:
    class Machine(RequestorMachine):
        def __init__(self) -> None:
            super().__init__(env, model())

    Machine.__name__ = f"RequestorMachine[{env.app.name}, {model.__name__}]"
    return Machine


@pytest.mark.slow
def test_requestor_app_follows_the_protocol(requestor_env: RequestorEnv) -> None:
    run_state_machine_as_test(machine(requestor_env, RequestorModel), settings=machine_settings())
    requestor_env.ensure_requestor()
    assert stop(requestor_env.requestor) == 0, requestor_env.requestor.log_tail()
    assert stop(requestor_env.provider) == 0, requestor_env.provider.log_tail()


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
def test_a_wrong_model_makes_the_machine_fail(requestor_env: RequestorEnv, wrong: str) -> None:
    model, failing_call = WRONG_MODELS[wrong]
    # Each wrong model is caught within ~150 examples (measured); it stops at the first failure.
    quick = machine_settings(
        max_examples=1000, database=None, phases=[Phase.generate], report_multiple_bugs=False
    )
    with pytest.raises(ProtocolMismatch) as caught:
        run_state_machine_as_test(machine(requestor_env, model), settings=quick)
    assert failing_call in str(caught.value)
