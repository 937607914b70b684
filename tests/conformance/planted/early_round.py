"""Planted bug: once no range is pending (all handed out, or the answer known), NextSubtask adds a range
beyond the plan ("keep providers busy") and hands it out, while HasPendingSubtasks rightly says there is no
pending work.

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
        if plan.next_pending() is None:
            plan.ranges.append(NonceRange())  # the bug: work nobody asked for
            plan.assign(len(plan.ranges) - 1, subtask_id)
            plan.save(task_dir.root)
            start, end = plan.bounds(len(plan.ranges) - 1)
            return Subtask(
                params={"input": plan.input, "difficulty": plan.difficulty, "start": start, "end": end}
            )
        return await super().next_subtask(task_dir, subtask_id, opaque_node_id)


if __name__ == "__main__":
    serve("early_round", requestor=EagerRequestor)
