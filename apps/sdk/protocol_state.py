"""The protocol state machine of docs/protocol.md, enforced by the SDK server and kept in the work dir.

Each task's record lives in `<task_dir>/taskapi-protocol.json`, written atomically after every
change, so a restarted app server resumes exactly where it stopped.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from apps.sdk.atomic_write import write_text_atomic
from apps.sdk.errors import AlreadyExists, FailedPrecondition, NotFound
from apps.sdk.handlers import VerifyResult
from apps.sdk.workdir import RequestorTaskDir

STATE_FILE = "taskapi-protocol.json"


class TaskState(enum.StrEnum):
    ACTIVE = "active"
    ABORTED = "aborted"


class SubtaskState(enum.StrEnum):
    ASSIGNED = "assigned"
    VERIFIED = "verified"
    FAILED = "failed"
    DISCARDED = "discarded"
    ABORTED = "aborted"


DISCARDABLE = frozenset({SubtaskState.ASSIGNED, SubtaskState.VERIFIED})


@dataclass
class TaskRecord:
    """The protocol-level state of one task and its subtasks."""

    state: TaskState = TaskState.ACTIVE
    subtasks: dict[str, SubtaskState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"state": self.state.value, "subtasks": {k: v.value for k, v in self.subtasks.items()}}
        )

    @classmethod
    def from_json(cls, text: str) -> TaskRecord:
        data = json.loads(text)
        return cls(TaskState(data["state"]), {k: SubtaskState(v) for k, v in data["subtasks"].items()})


class ProtocolState:
    """Checks calls against the state machine and records the transitions for one task dir."""

    def __init__(self, task_dir: RequestorTaskDir, task_id: str) -> None:
        self.task_dir = task_dir
        self.task_id = task_id
        self._path = task_dir.root / STATE_FILE

    def exists(self) -> bool:
        return self._path.is_file()

    def load(self) -> TaskRecord:
        """The task's record; NotFound if the task was never created."""
        if not self.exists():
            raise NotFound(f"unknown task {self.task_id!r}")
        return TaskRecord.from_json(self._path.read_text())

    def save(self, record: TaskRecord) -> None:
        write_text_atomic(self._path, record.to_json())

    def require_new(self) -> None:
        if self.exists():
            raise AlreadyExists(f"task {self.task_id!r} already exists")

    def require_active(self) -> TaskRecord:
        record = self.load()
        if record.state is not TaskState.ACTIVE:
            raise FailedPrecondition(f"task {self.task_id!r} is {record.state.value}")
        return record

    def require_new_subtask(self, record: TaskRecord, subtask_id: str) -> None:
        if subtask_id in record.subtasks:
            raise AlreadyExists(f"subtask {subtask_id!r} of task {self.task_id!r} already exists")

    def require_assigned(self, record: TaskRecord, subtask_id: str) -> None:
        state = record.subtasks.get(subtask_id)
        if state is None:
            raise NotFound(f"unknown subtask {subtask_id!r} of task {self.task_id!r}")
        if state is not SubtaskState.ASSIGNED:
            raise FailedPrecondition(
                f"subtask {subtask_id!r} of task {self.task_id!r} is {state.value}, not assigned"
            )

    def require_results(self, subtask_id: str) -> None:
        if not self.task_dir.has_outputs(subtask_id):
            raise FailedPrecondition(
                f"no results for subtask {subtask_id!r} of task {self.task_id!r}: "
                f"deliver them to subtask_outputs/{subtask_id}/ before Verify"
            )

    @staticmethod
    def after_verify(verdict: VerifyResult) -> SubtaskState | None:
        """The subtask's next state after a verdict; None keeps it assigned (ask again later)."""
        if verdict is VerifyResult.SUCCESS:
            return SubtaskState.VERIFIED
        if verdict is VerifyResult.FAILURE:
            return SubtaskState.FAILED
        return None

    @staticmethod
    def discardable(record: TaskRecord, subtask_ids: list[str]) -> list[str]:
        """The ids among `subtask_ids` that DiscardSubtasks may discard, in order, without repeats."""
        seen: list[str] = []
        for subtask_id in subtask_ids:
            if record.subtasks.get(subtask_id) in DISCARDABLE and subtask_id not in seen:
                seen.append(subtask_id)
        return seen
