"""Planted bug: DiscardSubtasks answers that it discarded the subtasks but only logs them; their ranges
stay assigned to subtasks that no longer exist, so that work never comes back and the task never ends.

Caught by: discard_makes_work_pending.
"""

from __future__ import annotations

from apps.sdk import RequestorTaskDir
from apps.tutorialapp.plan import Plan
from apps.tutorialapp.requestor import TutorialRequestor

from .serve import serve


class ForgetfulRequestor(TutorialRequestor):
    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        plan = Plan.load(task_dir.root)
        known = [subtask_id for subtask_id in subtask_ids if plan.index_of(subtask_id) is not None]
        with (task_dir.root / "discarded.log").open("a") as log:  # the bug: nothing is released
            log.writelines(f"{subtask_id}\n" for subtask_id in known)
        return known


if __name__ == "__main__":
    serve("lost_discard", requestor=ForgetfulRequestor)
