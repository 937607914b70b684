"""Batches of one task's NextSubtask or Verify calls (the RequestorAppBatch service, docs/protocol.md).

The SDK server serves them for every requestor app: under one hold of the task's lock, with the protocol
record written ahead once and saved once, it runs the handler's single methods id by id, unless the handler
also derives from `BatchRequestorHandler` and takes the whole batch in one go (the wasm adapter: one guest
invocation a batch). Either way the replies and the app's state are those of the single calls made one
after another.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from apps.sdk.errors import InvalidArgument
from apps.sdk.handlers import Subtask, VerifyResult
from apps.sdk.workdir import RequestorTaskDir

MAX_BATCH = 256
"""The most subtask ids one NextSubtasks or VerifyBatch call may name."""


@dataclass(frozen=True)
class SubtaskBatch:
    """A NextSubtasks batch's outcome: one subtask (or None) per ask, in order, and whether the task has
    pending subtasks after them."""

    subtasks: list[Subtask | None]
    has_pending: bool


class BatchRequestorHandler(abc.ABC):
    """A requestor handler that can serve a batch in one go, with the effects of its single calls made
    in order. All or nothing: a batch method that raises has changed nothing."""

    @abc.abstractmethod
    async def next_subtasks(
        self, task_dir: RequestorTaskDir, asks: Sequence[tuple[str, str]]
    ) -> SubtaskBatch | None:
        """`next_subtask` for each `(subtask_id, opaque_node_id)`; None if this handler cannot batch now
        (the server then calls `next_subtask` per id)."""

    @abc.abstractmethod
    async def verify_batch(
        self, task_dir: RequestorTaskDir, subtask_ids: Sequence[str]
    ) -> list[tuple[VerifyResult, str]] | None:
        """`verify` for each id; None if this handler cannot batch now (the server calls `verify` per id)."""


def check_batch(field: str, subtask_ids: Sequence[str], *, limit: int | None = MAX_BATCH) -> None:
    """Refuse (InvalidArgument naming `field`) a batch of no ids, of more than `limit` (None: no limit), or
    naming an id twice."""
    if not subtask_ids:
        raise InvalidArgument(f"{field} is empty: a batch names 1 to {MAX_BATCH} subtasks")
    if limit is not None and len(subtask_ids) > limit:
        raise InvalidArgument(f"{field} names {len(subtask_ids)} subtasks, over the limit of {limit} a batch")
    seen: set[str] = set()
    for subtask_id in subtask_ids:
        if subtask_id in seen:
            raise InvalidArgument(f"{field} names subtask {subtask_id!r} twice")
        seen.add(subtask_id)
