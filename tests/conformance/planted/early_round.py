"""Planted bug: once every range of a round is handed out, NextSubtask opens the next round early ("keep
providers busy") and hands out a range of it, while HasPendingSubtasks rightly says there is no pending work.

Caught by: next_subtask_only_when_pending.
"""

from __future__ import annotations

from apps.sdk import RequestorTaskDir, Subtask
from apps.tutorialapp.plan import NonceRange, Plan
from apps.tutorialapp.requestor import TutorialRequestor

from .serve import serve


class EagerRequestor(TutorialRequestor):
    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        plan = Plan.load(task_dir.root)
        if plan.next_pending() is None and plan.answer() is None:
            plan.open_rounds += 1  # the bug: a round nobody asked for, while the last is still out
            plan.ranges.extend(NonceRange() for _ in range(plan.subtasks))
            plan.save(task_dir.root)
        return await super().next_subtask(task_dir, subtask_id, opaque_node_id)


if __name__ == "__main__":
    serve("early_round", requestor=EagerRequestor)
