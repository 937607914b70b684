"""Planted bug: CreateTask plans the `subtasks` ranges it was asked for and ignores max_subtasks_count, so a
task needs more successful subtasks than the node allowed.

Caught by: subtasks_within_max.
"""

from __future__ import annotations

from apps.sdk import CreatedTask, JsonDict, RequestorTaskDir
from apps.tutorialapp.requestor import TutorialRequestor, parse_params

from .serve import serve

UNLIMITED = 10_000


class OverBudgetRequestor(TutorialRequestor):
    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        created = await super().create_task(task_dir, max_subtasks_count, params)
        parse_params(params, UNLIMITED).save(task_dir.root)  # the bug: the count the node gave is ignored
        return created


if __name__ == "__main__":
    serve("over_budget", requestor=OverBudgetRequestor)
