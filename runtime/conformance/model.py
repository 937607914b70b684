"""The protocol of docs/protocol.md as an executable model: what a correct app answers to each call.

`RequestorModel` and `ProviderModel` know nothing about any particular app. The state machines ask
them for the gRPC status a call must get (`expect_*`), make the call, compare, and then tell the
model what happened (the transition methods). Checks are listed in the order the protocol applies
them: the first that fails decides the status.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field

from grpclib.const import Status

from protos import taskapi_pb2 as pb

# Task and subtask ids become single path components of the work dir.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def valid_id(value: str) -> bool:
    """1-128 of [A-Za-z0-9_.-], starting with a letter or digit, without '..'."""
    return _ID.fullmatch(value) is not None and ".." not in value


def json_object(text: str) -> bool:
    """True when `text` is a JSON object; the empty string counts as `{}`."""
    if not text:
        return True
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


class SubtaskState(enum.Enum):
    ASSIGNED = "assigned"
    VERIFIED = "verified"
    FAILED = "failed"
    DISCARDED = "discarded"
    ABORTED = "aborted"


class Delivery(enum.Enum):
    """What the node put into subtask_outputs/<subtask_id>/ before Verify."""

    NOTHING = "nothing"
    HONEST = "honest"
    MUTATED = "mutated"


class Verdict(enum.IntEnum):
    SUCCESS = pb.VerifyReply.SUCCESS
    FAILURE = pb.VerifyReply.FAILURE
    AWAITING_DATA = pb.VerifyReply.AWAITING_DATA
    INCONCLUSIVE = pb.VerifyReply.INCONCLUSIVE


@dataclass
class SubtaskModel:
    params_json: str
    resources: list[str]
    state: SubtaskState = SubtaskState.ASSIGNED
    delivery: Delivery = Delivery.NOTHING


@dataclass
class TaskModel:
    aborted: bool = False
    subtasks: dict[str, SubtaskModel] = field(default_factory=dict)

    def assigned(self) -> list[str]:
        return [sid for sid, sub in self.subtasks.items() if sub.state is SubtaskState.ASSIGNED]


class RequestorModel:
    """A RequestorApp as docs/protocol.md describes it, for the tasks created during one example."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskModel] = {}
        self.shut_down = False

    # -- the checks every task call starts with -----------------------------------------------

    def _task_checks(self, task_id: str, *, must_be_active: bool) -> Status | None:
        if self.shut_down:
            return Status.UNAVAILABLE
        if not valid_id(task_id):
            return Status.INVALID_ARGUMENT
        task = self.tasks.get(task_id)
        if task is None:
            return Status.NOT_FOUND
        if must_be_active and task.aborted:
            return Status.FAILED_PRECONDITION
        return None

    def _assigned_checks(self, task_id: str, subtask_id: str) -> Status | None:
        subtask = self.tasks[task_id].subtasks.get(subtask_id)
        if subtask is None:
            return Status.NOT_FOUND
        if subtask.state is not SubtaskState.ASSIGNED:
            return Status.FAILED_PRECONDITION
        return None

    # -- predictions ------------------------------------------------------------------------

    def expect_create_task(self, task_id: str, max_subtasks_count: int, params_json: str) -> Status:
        """`params_json` is either valid parameters of the app or not a JSON object at all."""
        if self.shut_down:
            return Status.UNAVAILABLE
        if not valid_id(task_id) or max_subtasks_count < 1 or not json_object(params_json):
            return Status.INVALID_ARGUMENT
        if task_id in self.tasks:
            return Status.ALREADY_EXISTS
        return Status.OK

    def expect_next_subtask(self, task_id: str, subtask_id: str) -> Status:
        if self.shut_down:
            return Status.UNAVAILABLE
        if not valid_id(task_id) or not valid_id(subtask_id):
            return Status.INVALID_ARGUMENT
        status = self._task_checks(task_id, must_be_active=True)
        if status is not None:
            return status
        if subtask_id in self.tasks[task_id].subtasks:
            return Status.ALREADY_EXISTS
        return Status.OK

    def expect_verify(self, task_id: str, subtask_id: str) -> Status:
        status = self._task_checks(task_id, must_be_active=True) or self._assigned_checks(task_id, subtask_id)
        if status is not None:
            return status
        if self.tasks[task_id].subtasks[subtask_id].delivery is Delivery.NOTHING:
            return Status.FAILED_PRECONDITION
        return Status.OK

    def expect_verdicts(self, task_id: str, subtask_id: str) -> frozenset[Verdict]:
        """The verdicts a successful Verify may give: honest results verify, mutated ones never do."""
        if self.tasks[task_id].subtasks[subtask_id].delivery is Delivery.HONEST:
            return frozenset({Verdict.SUCCESS})
        return frozenset({Verdict.FAILURE, Verdict.AWAITING_DATA, Verdict.INCONCLUSIVE})

    def expect_discard_subtasks(self, task_id: str) -> Status:
        return self._task_checks(task_id, must_be_active=True) or Status.OK

    def discardable(self, task_id: str, subtask_ids: list[str]) -> list[str]:
        """The ids DiscardSubtasks may return: assigned or verified subtasks, first occurrence each."""
        subtasks = self.tasks[task_id].subtasks
        may = [
            sid
            for sid in subtask_ids
            if sid in subtasks and subtasks[sid].state in (SubtaskState.ASSIGNED, SubtaskState.VERIFIED)
        ]
        return list(dict.fromkeys(may))

    def expect_abort_subtask(self, task_id: str, subtask_id: str) -> Status:
        status = self._task_checks(task_id, must_be_active=True) or self._assigned_checks(task_id, subtask_id)
        return status or Status.OK

    def expect_abort_task(self, task_id: str) -> Status:
        """Idempotent: aborting an aborted task succeeds."""
        return self._task_checks(task_id, must_be_active=False) or Status.OK

    def expect_has_pending_subtasks(self, task_id: str) -> Status:
        """Allowed on an aborted task, where the answer is false."""
        return self._task_checks(task_id, must_be_active=False) or Status.OK

    def expect_run_benchmark(self) -> Status:
        return Status.UNAVAILABLE if self.shut_down else Status.OK

    def expect_shutdown(self) -> Status:
        return Status.UNAVAILABLE if self.shut_down else Status.OK

    # -- transitions after a reply that matched the prediction ------------------------------

    def task_created(self, task_id: str) -> None:
        self.tasks[task_id] = TaskModel()

    def subtask_assigned(self, task_id: str, subtask_id: str, params_json: str, resources: list[str]) -> None:
        self.tasks[task_id].subtasks[subtask_id] = SubtaskModel(params_json, resources)

    def results_delivered(self, task_id: str, subtask_id: str, delivery: Delivery) -> None:
        self.tasks[task_id].subtasks[subtask_id].delivery = delivery

    def verified(self, task_id: str, subtask_id: str, verdict: Verdict) -> None:
        """SUCCESS verifies, FAILURE fails; AWAITING_DATA and INCONCLUSIVE keep the subtask assigned."""
        subtask = self.tasks[task_id].subtasks[subtask_id]
        if verdict is Verdict.SUCCESS:
            subtask.state = SubtaskState.VERIFIED
        elif verdict is Verdict.FAILURE:
            subtask.state = SubtaskState.FAILED

    def discarded(self, task_id: str, subtask_ids: list[str]) -> None:
        for sid in subtask_ids:
            self.tasks[task_id].subtasks[sid].state = SubtaskState.DISCARDED

    def subtask_aborted(self, task_id: str, subtask_id: str) -> None:
        self.tasks[task_id].subtasks[subtask_id].state = SubtaskState.ABORTED

    def task_aborted(self, task_id: str) -> None:
        task = self.tasks[task_id]
        task.aborted = True
        for sid in task.assigned():
            task.subtasks[sid].state = SubtaskState.ABORTED

    def server_shut_down(self) -> None:
        self.shut_down = True

    def server_restarted(self) -> None:
        """A new server on the same work dir: every task and subtask is where it was."""
        self.shut_down = False


class ProviderModel:
    """A ProviderApp: persistent (until Shutdown) or single-call (Golem's: one Compute or RunBenchmark)."""

    def __init__(self, single_call: bool) -> None:
        self.single_call = single_call
        self.shut_down = False

    def expect_compute(self, subtask_id: str, params_json: str) -> Status:
        """`params_json` is either a subtask's parameters from NextSubtask or not a JSON object."""
        if self.shut_down:
            return Status.UNAVAILABLE
        if not valid_id(subtask_id) or not json_object(params_json):
            return Status.INVALID_ARGUMENT
        return Status.OK

    def expect_run_benchmark(self) -> Status:
        return Status.UNAVAILABLE if self.shut_down else Status.OK

    def expect_shutdown(self) -> Status:
        return Status.UNAVAILABLE if self.shut_down else Status.OK

    def called(self, rpc: str) -> None:
        """After a call that reached the server: Shutdown ends it; in single-call mode anything does."""
        if not self.shut_down and (rpc == "Shutdown" or self.single_call):
            self.shut_down = True

    def server_restarted(self) -> None:
        self.shut_down = False
