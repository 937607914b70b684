"""Task and subtask states of the requestor, and the transitions between them.

The states are str-valued enums: the store keeps their text, so a store written before they were enums
reads the same. Every state write of the store is checked against these tables (store.py): a write the
table does not allow raises `IllegalTransition` and changes nothing. A table maps a state to the states it
may become; a state absent from its own row's targets is final.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

State = TypeVar("State", bound=StrEnum)


class TaskState(StrEnum):
    ACTIVE = "active"
    """Created by its app; subtasks are handed out."""
    FINISHED = "finished"
    """The app has nothing pending and no subtask is live; outputs copied out."""
    FAILED = "failed"
    """Refused by its app, too many failures, an app failing NextSubtask, or outputs refused."""
    ABORTED = "aborted"
    """Aborted by the requestor's operator."""


class SubtaskState(StrEnum):
    REQUESTED = "requested"
    """NextSubtask is being asked under this id (written first, so a crash can be reconciled)."""
    WANTED = "wanted"
    """A replica (quorum.py) waiting for a provider; replicas have `replica_of` = their primary."""
    ASSIGNED = "assigned"
    """Handed to a provider under a lease (deadline_ms)."""
    DELIVERED = "delivered"
    """Its result file is in subtask_outputs, Verify not yet answered."""
    ACCEPTED = "accepted"
    """Verify said SUCCESS (or its quorum agreed with an accepted result)."""
    REJECTED = "rejected"
    """Verify said FAILURE, or outvoted by a quorum (the app returns the work to pending)."""
    EXPIRED = "expired"
    """The lease ran out or the provider left; aborted on the app."""
    FAILED = "failed"
    """The provider reported a failure, its result was refused, or verification was inconclusive."""
    ABANDONED = "abandoned"
    """A request interrupted by a crash, reconciled on restart."""
    ABORTED = "aborted"
    """Its task was aborted or failed, or (a replica) its primary was taken back."""
    DISCARDED = "discarded"
    """Accepted, then found forged by a re-execution audit; discarded on the app (verification.py)."""


TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.ACTIVE: frozenset({TaskState.FINISHED, TaskState.FAILED, TaskState.ABORTED}),
    TaskState.FINISHED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.ABORTED: frozenset(),
}

SUBTASK_TRANSITIONS: Mapping[SubtaskState, frozenset[SubtaskState]] = {
    SubtaskState.REQUESTED: frozenset(
        {SubtaskState.ASSIGNED, SubtaskState.FAILED, SubtaskState.ABANDONED, SubtaskState.ABORTED}
    ),
    SubtaskState.WANTED: frozenset({SubtaskState.ASSIGNED, SubtaskState.ABORTED}),
    SubtaskState.ASSIGNED: frozenset(
        {SubtaskState.DELIVERED, SubtaskState.FAILED, SubtaskState.EXPIRED, SubtaskState.ABORTED}
    ),
    SubtaskState.DELIVERED: frozenset(
        {SubtaskState.ACCEPTED, SubtaskState.REJECTED, SubtaskState.FAILED, SubtaskState.ABORTED}
    ),
    SubtaskState.ACCEPTED: frozenset({SubtaskState.DISCARDED}),
    SubtaskState.REJECTED: frozenset(),
    SubtaskState.EXPIRED: frozenset(),
    SubtaskState.FAILED: frozenset(),
    SubtaskState.ABANDONED: frozenset(),
    SubtaskState.ABORTED: frozenset(),
    SubtaskState.DISCARDED: frozenset(),
}

NEW_SUBTASK_STATES = frozenset({SubtaskState.REQUESTED, SubtaskState.WANTED})
"""The states a subtask is created in: a request to the app, or a replica of a primary."""

LIVE_SUBTASK_STATES = (
    SubtaskState.REQUESTED,
    SubtaskState.WANTED,
    SubtaskState.ASSIGNED,
    SubtaskState.DELIVERED,
)
"""Subtasks still in play: their task cannot finish while one is live."""

FAILURE_STATES = (SubtaskState.REJECTED, SubtaskState.FAILED, SubtaskState.EXPIRED)
"""Outcomes counted against a task's failure budget."""


def sources(table: Mapping[State, frozenset[State]], target: State) -> tuple[str, ...]:
    """The states that may become `target`, as the text the store keeps."""
    return tuple(sorted(str(state) for state, targets in table.items() if target in targets))


class IllegalTransition(Exception):
    """A state write the transition table forbids (e.g. `aborted -> accepted` when an abort raced a
    verification); nothing was written. `history` is the row's recorded states, oldest first."""

    def __init__(self, what: str, current: str | None, target: str, history: list[str]) -> None:
        self.what = what
        self.current = current
        self.target = target
        self.history = history
        shown = " -> ".join(history) if history else "none recorded"
        super().__init__(
            f"{what} cannot become {target} from {current or 'nothing (unknown)'} (history: {shown})"
        )
