"""Random valid and invalid call sequences against the RequestorApp, checked against the protocol model.

Each example drives the requestor under test with any interleaving of every RPC: valid and malformed
ids, bad JSON, parameters within and outside the app's schema, honest results (computed by the app's own
ProviderApp) and mutated ones (a bit flip, a truncation, another subtask's output, an empty file).
`RequestorModel` predicts each status; besides `requestor_protocol` the machine checks the properties
about pending work, resources, verdicts and complete tasks (see `runtime.conformance.properties`).

Ids are chosen from lists in creation order (never sorted: fresh ids differ when Hypothesis replays an
example, and their order must not).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grpclib.const import Status
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from environments.registry import UnknownEnvironment, capabilities, environment_ids
from runtime.conformance.model import (
    Delivery,
    RequestorModel,
    SubtaskModel,
    Verdict,
    json_object,
    valid_id,
)
from runtime.conformance.mutations import ALWAYS_WRONG, MUTATIONS, mutate
from runtime.conformance.properties import Checks
from runtime.conformance.session import HonestResult, Session
from runtime.conformance.strategies import BAD_IDS, BAD_JSON, MAX_SUBTASKS, NODE_IDS, weighted
from runtime.conformance.wire import (
    APP_ERRORS,
    SUBTASK_INPUTS,
    SUBTASK_OUTPUTS,
    TASK_INPUTS,
    TASK_OUTPUTS,
    Reply,
    deliver,
    mismatch,
)

PROTOCOL = "requestor_protocol"

WorkKey = tuple[str, tuple[str, ...]]  # a subtask's parameters (JSON) and its resources' sha256


def _contents_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def sandboxed_environments() -> list[str]:
    """The installed environments that are sandboxes: what an app's CreateTask may name as its env_id
    (`local`, plain child processes for development, is none)."""
    sandboxes = []
    for env_id in environment_ids():
        try:
            if capabilities(env_id).sandboxed:
                sandboxes.append(env_id)
        except UnknownEnvironment:  # installed but not loadable: not one an app can run in here
            continue
    return sandboxes


class RequestorMachine(RuleBasedStateMachine):
    """Drives the session's requestor with any sequence of calls; every reply is checked."""

    def __init__(self, session: Session, checks: Checks) -> None:
        super().__init__()
        self.session = session
        self.checks = checks
        self.model = RequestorModel()
        self.wire = session.requestor_wire()
        self.free_task_ids: list[str] = []  # ids whose CreateTask failed: they are still free
        self.mutations: dict[tuple[str, str], tuple[str, str]] = {}
        # this example's honest results, by the work they are of: a subtask handed out again for the same
        # work may get a result with other bytes (a timestamp in a PNG) that is just as honest
        self.results: dict[WorkKey, bytes] = {}

    # -- helpers ------------------------------------------------------------------------------

    def expect(self, what: str, reply: Reply[Any], status: Status) -> bool:
        """Check a reply's status against the model; a mismatch violates requestor_protocol."""
        self.checks.exercised[PROTOCOL] += 1
        problem = mismatch(what, reply, status)
        if problem is not None:
            self.checks.fail_and_drop(PROTOCOL, problem)
        return status is Status.OK

    def protocol(self, ok: bool, message: str) -> None:
        if not ok:
            self.checks.fail_and_drop(PROTOCOL, message)

    def task_dir_of(self, task_id: str) -> Path:
        return self.session.requestor.work_dir / task_id

    def honest(self, task_id: str, subtask_id: str, subtask: SubtaskModel) -> HonestResult:
        result = self.session.honest.result(
            self.checks, self.task_dir_of(task_id), subtask_id, subtask.params_json, subtask.resources
        )
        self.results[self.work_of(task_id, subtask)] = result.content
        return result

    def work_of(self, task_id: str, subtask: SubtaskModel) -> WorkKey:
        """What a provider is given for a subtask: its parameters and its resources' contents."""
        inputs = self.task_dir_of(task_id) / SUBTASK_INPUTS
        digests = tuple(_contents_digest(inputs / name) for name in subtask.resources)
        return subtask.params_json, digests

    # -- choosing ids -------------------------------------------------------------------------

    def task_ids(self) -> st.SearchStrategy[str]:
        """Mostly this example's tasks; sometimes an unknown id or a malformed one."""
        known = list(self.model.tasks)
        choices: list[st.SearchStrategy[str]] = [st.sampled_from(known)] * 4 if known else []
        return st.one_of([*choices, st.just(self.session.fresh_id("task")), BAD_IDS])

    def subtask_ids(self, task_id: str) -> st.SearchStrategy[str]:
        """Mostly the task's subtasks; else a fresh id, another task's, a malformed one."""
        task = self.model.tasks.get(task_id)
        own = list(task.subtasks) if task is not None else []
        others = list(
            dict.fromkeys(sid for tid, t in self.model.tasks.items() if tid != task_id for sid in t.subtasks)
        )
        choices: list[st.SearchStrategy[str]] = [st.just(self.session.fresh_id("subtask"))]
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

    # -- the one rule: an action drawn by weight among those possible now ------------------------

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One action (see ACTIONS): weights keep the happy and cheating paths common, while every RPC,
        every fault and every id kind still comes up."""
        possible = [(name, weight) for name, weight, when in ACTIONS if when(self)]
        getattr(self, data.draw(weighted(possible), label="action"))(data)

    # -- CreateTask ---------------------------------------------------------------------------

    @initialize(data=st.data())
    def create_first_task(self, data: st.DataObject) -> None:
        """Every example starts with a task the app accepts (as a run's calibration found)."""
        spec = data.draw(self.session.tasks, label="task")
        self._create(self.session.fresh_id("task"), spec.max_subtasks, spec.params_json)

    def draw_params(self, data: st.DataObject) -> str:
        return json.dumps(data.draw(self.session.params))

    def create_task(self, data: st.DataObject) -> None:
        choices = [st.just(self.session.fresh_id("task"))]
        if self.free_task_ids:
            choices.append(st.sampled_from(self.free_task_ids))
        task_id = data.draw(st.one_of(choices))
        self._create(task_id, data.draw(MAX_SUBTASKS), self.draw_params(data))

    def create_task_bad_request(self, data: st.DataObject) -> None:
        """One fault: a task id in use or malformed, max_subtasks_count < 1, or params not a JSON object."""
        task_id, max_subtasks = self.session.fresh_id("task"), 1
        params = self.draw_params(data)
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

    def create_task_off_schema(self, data: st.DataObject) -> None:
        """Parameters outside the declared schema: the app answers OK or INVALID_ARGUMENT, never crashes."""
        self._create(
            self.session.fresh_id("task"),
            data.draw(MAX_SUBTASKS),
            json.dumps(data.draw(self.session.bad_params)),
        )

    def _create(self, task_id: str, max_subtasks_count: int, params_json: str) -> bool:
        expected = self.model.expect_create_task(task_id, max_subtasks_count, params_json)
        reply = self.wire.create_task(task_id, max_subtasks_count, params_json)
        what = f"CreateTask({task_id!r}, {max_subtasks_count}, {params_json[:200]!r})"
        refused = expected is Status.OK and reply.status is Status.INVALID_ARGUMENT
        if not self.expect(what, reply, Status.INVALID_ARGUMENT if refused else expected):
            if valid_id(task_id) and task_id not in self.model.tasks and task_id not in self.free_task_ids:
                self.free_task_ids.append(task_id)
            return False
        created = reply.value()
        sandboxes = sandboxed_environments()
        self.protocol(
            created.env_id in sandboxes,
            f"CreateTask: env_id {created.env_id!r} is none of the sandboxes {sandboxes}",
        )
        self.protocol(
            json_object(created.prerequisites_json),
            f"CreateTask: prerequisites_json {created.prerequisites_json!r} is not a JSON object",
        )
        for name in (TASK_INPUTS, SUBTASK_INPUTS, TASK_OUTPUTS, SUBTASK_OUTPUTS):
            self.protocol(
                (self.task_dir_of(task_id) / name).is_dir(), f"CreateTask: the task dir has no {name}/"
            )
        self.model.task_created(task_id)
        if task_id in self.free_task_ids:
            self.free_task_ids.remove(task_id)
        return True

    # -- NextSubtask and HasPendingSubtasks ----------------------------------------------------

    def next_subtask(self, data: st.DataObject) -> None:
        """HasPendingSubtasks, then NextSubtask with a new id (fresh, or one another task uses)."""
        task_id = data.draw(st.sampled_from(self.active_tasks()))
        task = self.model.tasks[task_id]
        elsewhere = [sid for _, sid in self.known_subtasks() if sid not in task.subtasks]
        fresh = st.just(self.session.fresh_id("subtask"))
        subtask_id = data.draw(st.one_of(fresh, fresh, st.sampled_from(elsewhere)) if elsewhere else fresh)
        pending = self._has_pending(task_id)
        handed_out = self._next(task_id, subtask_id, data.draw(NODE_IDS))
        if pending is None:
            return
        if pending:
            self.checks.check(
                "has_pending_implies_next_subtask",
                handed_out is not None,
                f"HasPendingSubtasks({task_id!r}) said true, then NextSubtask handed out nothing",
            )
        else:
            self.checks.check(
                "next_subtask_only_when_pending",
                handed_out is None,
                f"HasPendingSubtasks({task_id!r}) said false, then NextSubtask({subtask_id!r}) handed out "
                f"{handed_out.params_json if handed_out else ''}",
            )
            self._check_complete(task_id)

    def next_subtask_any_ids(self, data: st.DataObject) -> None:
        """Any task id (unknown, malformed, aborted) with any subtask id (in use, another task's, ...)."""
        task_id = data.draw(self.task_ids())
        self._next(task_id, data.draw(self.subtask_ids(task_id)), data.draw(NODE_IDS))

    def _next(self, task_id: str, subtask_id: str, node_id: str = "node") -> SubtaskModel | None:
        expected = self.model.expect_next_subtask(task_id, subtask_id)
        reply = self.wire.next_subtask(task_id, subtask_id, node_id)
        if not self.expect(f"NextSubtask({task_id!r}, {subtask_id!r})", reply, expected):
            return None
        if not reply.value().HasField("subtask"):
            return None
        subtask = reply.value().subtask
        self.protocol(
            json_object(subtask.subtask_params_json),
            f"NextSubtask: subtask_params_json {subtask.subtask_params_json!r} is not a JSON object",
        )
        inputs = self.task_dir_of(task_id) / SUBTASK_INPUTS
        missing = [name for name in subtask.resources if not _plain_file(inputs, name)]
        self.checks.check(
            "subtask_resources_exist",
            not missing,
            f"NextSubtask({task_id!r}, {subtask_id!r}) names resources {missing} that are not files "
            f"of {SUBTASK_INPUTS}/",
        )
        self.model.subtask_assigned(task_id, subtask_id, subtask.subtask_params_json, list(subtask.resources))
        return self.model.tasks[task_id].subtasks[subtask_id]

    def _has_pending(self, task_id: str) -> bool | None:
        """HasPendingSubtasks checked against the model; None when the call failed (as predicted)."""
        expected = self.model.expect_has_pending_subtasks(task_id)
        reply = self.wire.has_pending_subtasks(task_id)
        if not self.expect(f"HasPendingSubtasks({task_id!r})", reply, expected):
            return None
        pending = reply.value().has_pending_subtasks
        self.protocol(
            not (pending and self.model.tasks[task_id].aborted),
            f"HasPendingSubtasks: aborted task {task_id!r} has pending subtasks",
        )
        return pending

    def has_pending_subtasks(self, data: st.DataObject) -> None:
        task_id = data.draw(self.task_ids())
        pending = self._has_pending(task_id)
        if pending is None or self.model.tasks[task_id].aborted:
            return
        if pending:
            handed_out = self._next(task_id, self.session.fresh_id("subtask"))
            self.checks.check(
                "has_pending_implies_next_subtask",
                handed_out is not None,
                f"HasPendingSubtasks({task_id!r}) said true, then NextSubtask handed out nothing",
            )
        else:
            self._check_complete(task_id)

    def _check_complete(self, task_id: str) -> None:
        """A task with no pending work and no assigned subtask is complete: its result is in task_outputs."""
        if self.model.tasks[task_id].assigned():
            return
        outputs = self.task_dir_of(task_id) / TASK_OUTPUTS
        self.checks.check(
            "complete_task_has_result",
            any(path.is_file() for path in outputs.rglob("*")),
            f"task {task_id!r} is complete (nothing pending or assigned) but {TASK_OUTPUTS}/ is empty",
        )

    # -- results and Verify -------------------------------------------------------------------

    def deliver_honest_result(self, data: st.DataObject) -> None:
        task_id, subtask_id = data.draw(st.one_of(self.example_subtasks()))
        subtask = self.model.tasks[task_id].subtasks[subtask_id]
        result = self.honest(task_id, subtask_id, subtask)
        deliver(self.task_dir_of(task_id), subtask_id, result.name, result.content)
        self.model.results_delivered(task_id, subtask_id, Delivery.HONEST)

    def deliver_mutated_result(self, data: st.DataObject) -> None:
        """A mutation of the honest result in its place: it must never verify."""
        task_id, subtask_id = data.draw(st.one_of(self.example_subtasks()))
        self._deliver_mutated(task_id, subtask_id, data)

    def _deliver_mutated(
        self, task_id: str, subtask_id: str, data: st.DataObject, kinds: Sequence[str] = MUTATIONS
    ) -> None:
        """Deliver a mutation of one of `kinds` (an empty file when no other kind can differ)."""
        subtask = self.model.tasks[task_id].subtasks[subtask_id]
        honest = self.honest(task_id, subtask_id, subtask)
        work = self.work_of(task_id, subtask)
        others = [content for key, content in self.results.items() if key != work]
        kind = data.draw(st.sampled_from(kinds))
        mutated = mutate(kind, honest.content, others, data)
        if mutated is None:
            kind, mutated = "empty", b""
        if mutated == honest.content:
            return
        deliver(self.task_dir_of(task_id), subtask_id, honest.name, mutated)
        self.model.results_delivered(task_id, subtask_id, Delivery.MUTATED)
        self.mutations[(task_id, subtask_id)] = (
            kind,
            f"{kind} ({len(honest.content)} -> {len(mutated)} bytes)",
        )

    def verify(self, data: st.DataObject) -> None:
        self._verify(*data.draw(self.task_and_subtask_ids()))

    def _verify(self, task_id: str, subtask_id: str) -> None:
        expected = self.model.expect_verify(task_id, subtask_id)
        reply = self.wire.verify(task_id, subtask_id)
        if expected is Status.OK and reply.status in APP_ERRORS:
            self._verify_crashed(task_id, subtask_id, reply)
            return
        if not self.expect(f"Verify({task_id!r}, {subtask_id!r})", reply, expected):
            return
        verdict = Verdict(reply.value().result)
        reason = reply.value().reason
        delivery = self.model.tasks[task_id].subtasks[subtask_id].delivery
        if delivery is Delivery.HONEST:
            self.checks.check(
                "verify_accepts_honest_result",
                verdict is Verdict.SUCCESS,
                f"Verify({task_id!r}, {subtask_id!r}) of the honest result gave {verdict.name} ({reason!r})",
            )
        elif self.mutations[(task_id, subtask_id)][0] in ALWAYS_WRONG:
            mutation = self.mutations[(task_id, subtask_id)][1]
            self.checks.check(
                "verify_rejects_mutated_result",
                verdict is not Verdict.SUCCESS,
                f"Verify({task_id!r}, {subtask_id!r}) of a mutated result ({mutation}) gave SUCCESS",
            )
        self.model.verified(task_id, subtask_id, verdict)

    def _verify_crashed(self, task_id: str, subtask_id: str, reply: Reply[Any]) -> None:
        """Verify failed as a call (the handler crashed) where it owed a verdict: an honest result was not
        accepted, or a mutated one not rejected. The SDK records no transition, nor does the model."""
        what = f"Verify({task_id!r}, {subtask_id!r}) answered {reply.status.name} {reply.details!r}"
        if self.model.tasks[task_id].subtasks[subtask_id].delivery is Delivery.HONEST:
            self.checks.check("verify_accepts_honest_result", False, f"{what} for the honest result")
        else:
            mutation = self.mutations[(task_id, subtask_id)][1]
            self.checks.check(
                "verify_rejects_mutated_result", False, f"{what} for a mutated result ({mutation})"
            )

    def work_one_subtask(self, data: st.DataObject) -> None:
        """The happy path, so tasks get done: next subtask, honest result, Verify."""
        task_id = data.draw(st.sampled_from(self.active_tasks()))
        subtask_id = self.session.fresh_id("subtask")
        subtask = self._next(task_id, subtask_id)
        if subtask is not None:
            result = self.honest(task_id, subtask_id, subtask)
            deliver(self.task_dir_of(task_id), subtask_id, result.name, result.content)
            self.model.results_delivered(task_id, subtask_id, Delivery.HONEST)
            self._verify(task_id, subtask_id)

    def cheat_one_subtask(self, data: st.DataObject) -> None:
        """A cheating provider's path: next subtask, a mutated result, Verify."""
        task_id = data.draw(st.sampled_from(self.active_tasks()))
        subtask_id = self.session.fresh_id("subtask")
        if self._next(task_id, subtask_id) is not None:
            self._deliver_mutated(task_id, subtask_id, data, sorted(ALWAYS_WRONG))
            self._verify(task_id, subtask_id)

    # -- DiscardSubtasks, AbortSubtask, AbortTask ------------------------------------------------

    def discard_subtasks(self, data: st.DataObject) -> None:
        task_id = data.draw(self.task_ids())
        subtask_ids = data.draw(st.lists(self.subtask_ids(task_id), max_size=4))
        expected = self.model.expect_discard_subtasks(task_id)
        reply = self.wire.discard_subtasks(task_id, subtask_ids)
        if not self.expect(f"DiscardSubtasks({task_id!r}, {subtask_ids!r})", reply, expected):
            return
        discarded = list(reply.value().discarded_subtask_ids)
        may = self.model.discardable(task_id, subtask_ids)
        self.protocol(
            len(set(discarded)) == len(discarded) and set(discarded) <= set(may),
            f"DiscardSubtasks discarded {discarded}; only {may} are discardable",
        )
        self.model.discarded(task_id, discarded)

    def abort_subtask(self, data: st.DataObject) -> None:
        task_id, subtask_id = data.draw(self.task_and_subtask_ids())
        expected = self.model.expect_abort_subtask(task_id, subtask_id)
        reply = self.wire.abort_subtask(task_id, subtask_id)
        if self.expect(f"AbortSubtask({task_id!r}, {subtask_id!r})", reply, expected):
            self.model.subtask_aborted(task_id, subtask_id)

    def abort_task(self, data: st.DataObject) -> None:
        task_id = data.draw(self.task_ids())
        expected = self.model.expect_abort_task(task_id)
        reply = self.wire.abort_task(task_id)
        if self.expect(f"AbortTask({task_id!r})", reply, expected):
            self.model.task_aborted(task_id)


def _always(machine: RequestorMachine) -> bool:
    return True


def _active(machine: RequestorMachine) -> bool:
    return bool(machine.active_tasks())


def _subtasks(machine: RequestorMachine) -> bool:
    return machine.has_subtasks()


ACTIONS: tuple[tuple[str, int, Callable[[RequestorMachine], bool]], ...] = (
    ("work_one_subtask", 6, _active),
    ("cheat_one_subtask", 4, _active),
    ("next_subtask", 4, _active),
    ("verify", 4, _always),
    ("deliver_honest_result", 3, _subtasks),
    ("deliver_mutated_result", 3, _subtasks),
    ("has_pending_subtasks", 3, _always),
    ("discard_subtasks", 3, _always),
    ("create_task", 2, _always),
    ("abort_subtask", 2, _always),
    ("abort_task", 1, _always),
    ("next_subtask_any_ids", 1, _always),
    ("create_task_bad_request", 1, _always),
    ("create_task_off_schema", 1, _always),
)
"""Every action of the machine: its method, its weight, and when it is possible."""


def _plain_file(folder: Path, name: str) -> bool:
    """A resource names a file inside `folder` (not the folder itself, nothing outside it)."""
    if not name:
        return False
    path = (folder / name).resolve()
    return path.is_relative_to(folder.resolve()) and path != folder.resolve() and path.is_file()
