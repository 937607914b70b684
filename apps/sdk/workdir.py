"""The work-dir layout shared by nodes and apps (the names are part of Golem's task-api contract).

A requestor app serves a work dir holding one directory per task::

    <work_dir>/<task_id>/task_inputs/         files the requestor gave with the task (read-only to the app)
    <work_dir>/<task_id>/subtask_inputs/      files the app prepared for providers (named in NextSubtask)
    <work_dir>/<task_id>/subtask_outputs/<subtask_id>/   results delivered by the node before Verify
    <work_dir>/<task_id>/task_outputs/        the task's final result, written by the app

A provider app serves one task's dir::

    <task_dir>/subtask_inputs/                resources copied from the requestor
    <task_dir>/<subtask_id>/                  the subtask's scratch space; Compute's output lives inside it
"""

from __future__ import annotations

import re
from pathlib import Path

TASK_INPUTS_DIR = "task_inputs"
SUBTASK_INPUTS_DIR = "subtask_inputs"
TASK_OUTPUTS_DIR = "task_outputs"
SUBTASK_OUTPUTS_DIR = "subtask_outputs"

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_id(kind: str, value: str) -> str:
    """Return `value` if it is safe as a single path component, else raise ValueError naming `kind`."""
    if not _SAFE_ID.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid {kind} {value!r}: use 1-128 letters, digits, '_', '-' or '.', not starting with "
            "a punctuation mark and without '..'"
        )
    return value


class RequestorTaskDir:
    """Paths inside one task's directory on the requestor side."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def task_inputs(self) -> Path:
        return self.root / TASK_INPUTS_DIR

    @property
    def subtask_inputs(self) -> Path:
        return self.root / SUBTASK_INPUTS_DIR

    @property
    def task_outputs(self) -> Path:
        return self.root / TASK_OUTPUTS_DIR

    @property
    def subtask_outputs_root(self) -> Path:
        return self.root / SUBTASK_OUTPUTS_DIR

    def subtask_outputs(self, subtask_id: str) -> Path:
        return self.subtask_outputs_root / check_id("subtask id", subtask_id)

    def prepare(self) -> None:
        """Create the four standard directories (existing ones are kept)."""
        for directory in (
            self.task_inputs,
            self.subtask_inputs,
            self.task_outputs,
            self.subtask_outputs_root,
        ):
            directory.mkdir(parents=True, exist_ok=True)

    def has_outputs(self, subtask_id: str) -> bool:
        """True once the node delivered at least one result file for the subtask."""
        directory = self.subtask_outputs(subtask_id)
        return directory.is_dir() and any(directory.iterdir())


class RequestorWorkDir:
    """The requestor app's work dir: one `RequestorTaskDir` per task."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def task_dir(self, task_id: str) -> RequestorTaskDir:
        return RequestorTaskDir(self.root / check_id("task id", task_id))


class ProviderTaskDir:
    """Paths inside one task's directory on the provider side."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def subtask_inputs(self) -> Path:
        return self.root / SUBTASK_INPUTS_DIR

    def subtask_dir(self, subtask_id: str) -> Path:
        return self.root / check_id("subtask id", subtask_id)

    def prepare(self) -> None:
        self.subtask_inputs.mkdir(parents=True, exist_ok=True)
