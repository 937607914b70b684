"""The interfaces an app author implements: one for the requestor side, one for the provider side.

The SDK server checks every call against the protocol state machine (docs/protocol.md) before it
reaches a handler, so a handler only sees calls that are valid in the current state: it never has
to deal with unknown tasks, reused subtask ids or verification of a subtask without results.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir

JsonDict = dict[str, Any]


class VerifyResult(enum.IntEnum):
    """Verdicts of Verify; values are the wire values of `VerifyReply.VerifyResult`."""

    SUCCESS = 0
    FAILURE = 1
    AWAITING_DATA = 2
    INCONCLUSIVE = 3


@dataclass(frozen=True)
class CreatedTask:
    """What CreateTask tells the node: where subtasks run and what they need."""

    env_id: str
    prerequisites: JsonDict
    min_memory_mib: float = 0.0


@dataclass(frozen=True)
class Subtask:
    """One unit of work handed to a provider."""

    params: JsonDict
    resources: list[str] = field(default_factory=list)


class RequestorAppHandler(abc.ABC):
    """Splits tasks into subtasks and verifies their results. State must live in the task dir."""

    @abc.abstractmethod
    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        """Validate `params` (raise `InvalidArgument` naming the bad field) and set the task up."""

    @abc.abstractmethod
    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        """Hand out the next piece of pending work under `subtask_id`, or None when there is none now."""

    @abc.abstractmethod
    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        """Check the results in `task_dir.subtask_outputs(subtask_id)`; return a verdict and a reason."""

    @abc.abstractmethod
    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        """Return the given subtasks' work to pending; return the ids actually discarded."""

    @abc.abstractmethod
    async def has_pending_subtasks(self, task_dir: RequestorTaskDir) -> bool:
        """True when `next_subtask` would hand out work now."""

    @abc.abstractmethod
    async def abort_task(self, task_dir: RequestorTaskDir) -> None:
        """Stop the task: no further subtasks will be requested or verified."""

    @abc.abstractmethod
    async def abort_subtask(self, task_dir: RequestorTaskDir, subtask_id: str) -> None:
        """Return one assigned subtask's work to pending."""

    @abc.abstractmethod
    async def run_benchmark(self, work_dir: Path) -> float:
        """Return a positive score; higher means a faster machine for this app."""


class ProviderAppHandler(abc.ABC):
    """Computes subtasks on a provider. Runs inside the provider's environment."""

    @abc.abstractmethod
    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        """Compute one subtask; return the result file's path relative to `task_dir.root`.

        Resources named by NextSubtask are in `task_dir.subtask_inputs`; write only under
        `task_dir.subtask_dir(subtask_id)`.
        """

    @abc.abstractmethod
    async def run_benchmark(self, work_dir: Path) -> float:
        """Return a positive score; higher means a faster machine for this app."""
