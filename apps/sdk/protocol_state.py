"""The protocol state machine of docs/protocol.md, enforced by the SDK server and kept in the work dir.

Each task's record lives in `<task_dir>/taskapi-protocol.json` (written whole when the task is created)
and `taskapi-protocol.journal` (each later change appended and flushed to disk before the call answers:
`apps.sdk.journal`), so a restarted app server resumes exactly where it stopped. The server process keeps
each record it has read in memory and reads only the journal lines appended since, so a call's cost does
not grow with the number of subtasks.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.sdk.errors import AlreadyExists, FailedPrecondition, NotFound
from apps.sdk.handlers import VerifyResult
from apps.sdk.journal import Journal, JournalCorrupt, Position
from apps.sdk.workdir import RequestorTaskDir

STATE_NAME = "taskapi-protocol"
STATE_FILE = f"{STATE_NAME}.json"
KNOWN_RECORDS = 64
"""How many tasks' records a server keeps in memory (the least recently used is dropped)."""


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

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.value, "subtasks": {k: v.value for k, v in self.subtasks.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        return cls(TaskState(data["state"]), {k: SubtaskState(v) for k, v in data["subtasks"].items()})

    def copy(self) -> TaskRecord:
        return TaskRecord(self.state, dict(self.subtasks))

    def changes_to(self, other: TaskRecord) -> list[list[str]]:
        """The journal lines that turn this record into `other`."""
        changes = [["task", other.state.value]] if other.state is not self.state else []
        if other.subtasks != self.subtasks:
            changes += [["forget", k] for k in self.subtasks.keys() - other.subtasks.keys()]
            changes += [["subtask", k, v.value] for k, v in other.subtasks.items() - self.subtasks.items()]
        return changes

    def apply(self, change: Any) -> None:
        """Replay one journal line."""
        match change:
            case ["task", str(state)]:
                self.state = TaskState(state)
            case ["subtask", str(subtask_id), str(state)]:
                self.subtasks[subtask_id] = SubtaskState(state)
            case ["forget", str(subtask_id)]:
                self.subtasks.pop(subtask_id, None)
            case _:
                raise JournalCorrupt(f"the protocol journal holds a change it cannot apply: {change!r}")


_known: OrderedDict[Path, tuple[TaskRecord, Position]] = OrderedDict()
"""Each task dir's record as last saved or read, with how much of its journal it includes."""


class ProtocolState:
    """Checks calls against the state machine and records the transitions for one task dir."""

    def __init__(self, task_dir: RequestorTaskDir, task_id: str) -> None:
        self.task_dir = task_dir
        self.task_id = task_id
        self._journal = Journal(task_dir.root, STATE_NAME)

    def exists(self) -> bool:
        return self._journal.exists()

    def load(self) -> TaskRecord:
        """The task's record (the caller's own copy); NotFound if the task was never created."""
        if not self.exists():
            raise NotFound(f"unknown task {self.task_id!r}")
        return self._saved()[0].copy()

    def save(self, record: TaskRecord) -> None:
        """Record `record`: the first time whole, then as the changes from the record saved before."""
        root = self.task_dir.root
        if not self.exists():
            _, position = self._journal.save(record.to_dict())
        else:
            saved, position = self._saved()
            self._journal.append(saved.changes_to(record), position)
        _known[root] = record.copy(), position
        _known.move_to_end(root)
        while len(_known) > KNOWN_RECORDS:
            _known.popitem(last=False)

    def _saved(self) -> tuple[TaskRecord, Position]:
        """The record as saved, from memory brought up to date with the journal, else read whole."""
        root = self.task_dir.root
        known = _known.pop(root, None)
        if known is not None:
            record, position = known
            changes = self._journal.read_since(position)
            if changes is not None:
                for change in changes:
                    record.apply(change)
                _known[root] = record, position
                return record, position
        data, generation, changes, maybe_position = self._journal.read(repair=True)
        record = TaskRecord.from_dict(data)
        for change in changes:
            record.apply(change)
        position = maybe_position or self._journal.start(generation)
        _known[root] = record, position
        return record, position

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
