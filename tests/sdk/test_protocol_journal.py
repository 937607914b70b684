"""The SDK's protocol record: written whole once, then as appended changes, read back the same by a fresh
process, and kept current in memory when another writer appended."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.sdk import protocol_state
from apps.sdk.journal import Journal
from apps.sdk.protocol_state import STATE_FILE, ProtocolState, SubtaskState, TaskRecord, TaskState
from apps.sdk.workdir import RequestorTaskDir


@pytest.fixture
def state(tmp_path: Path) -> ProtocolState:
    task_dir = RequestorTaskDir(tmp_path / "task")
    task_dir.prepare()
    created = ProtocolState(task_dir, "task")
    created.save(TaskRecord())
    return created


def test_a_change_is_one_appended_line_and_the_snapshot_stays(state: ProtocolState) -> None:
    snapshot = (state.task_dir.root / STATE_FILE).stat()
    journal = state.task_dir.root / "taskapi-protocol.journal"
    before = journal.read_bytes()
    record = state.load()
    record.subtasks["sub-0"] = SubtaskState.ASSIGNED
    state.save(record)
    record.subtasks["sub-0"] = SubtaskState.VERIFIED
    state.save(record)
    state.save(record)  # nothing changed: nothing written
    assert (
        journal.read_bytes()[len(before) :]
        == b'["subtask","sub-0","assigned"]\n["subtask","sub-0","verified"]\n'
    )
    now = (state.task_dir.root / STATE_FILE).stat()
    assert (now.st_ino, now.st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)


def test_a_fresh_process_reads_the_same_record(state: ProtocolState) -> None:
    record = state.load()
    record.subtasks.update({"a": SubtaskState.ASSIGNED, "b": SubtaskState.ASSIGNED})
    state.save(record)
    del record.subtasks["a"]
    record.state = TaskState.ABORTED
    record.subtasks["b"] = SubtaskState.ABORTED
    state.save(record)
    protocol_state._known.clear()  # a restarted app server
    assert ProtocolState(state.task_dir, "task").load() == TaskRecord(
        TaskState.ABORTED, {"b": SubtaskState.ABORTED}
    )


def test_the_record_held_in_memory_sees_what_another_writer_appended(state: ProtocolState) -> None:
    record = state.load()
    record.subtasks["mine"] = SubtaskState.ASSIGNED
    state.save(record)  # this process now holds the record
    _, _, _, position = Journal(state.task_dir.root, "taskapi-protocol").read(repair=False)
    assert position is not None
    Journal(state.task_dir.root, "taskapi-protocol").append([["subtask", "theirs", "verified"]], position)
    assert state.load().subtasks == {"mine": SubtaskState.ASSIGNED, "theirs": SubtaskState.VERIFIED}


def test_a_caller_changing_its_copy_without_saving_changes_nothing(state: ProtocolState) -> None:
    state.load().subtasks["unsaved"] = SubtaskState.ASSIGNED
    assert "unsaved" not in state.load().subtasks
