"""Planted bug: the answer is the nonce of the first range *verified* with a valid nonce, not of the lowest
such range: whichever provider reports first decides the task's result.

Caught by: result_independent_of_arrival_order.
"""

from __future__ import annotations

import json

from apps.sdk import RequestorTaskDir, VerifyResult
from apps.tutorialapp import pow
from apps.tutorialapp.plan import Plan
from apps.tutorialapp.requestor import RESULT_FILE, TutorialRequestor

from .serve import serve

FIRST = "first-nonce.json"


class FirstComeRequestor(TutorialRequestor):
    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        verdict, reason = await super().verify(task_dir, subtask_id)
        plan = Plan.load(task_dir.root)
        index = plan.index_of(subtask_id)
        first = task_dir.root / FIRST
        if verdict is VerifyResult.SUCCESS and index is not None and plan.ranges[index].nonce is not None:
            if not first.exists():  # the bug: the first verified nonce wins
                first.write_text(json.dumps(plan.ranges[index].nonce))
            self._write_answer(plan, task_dir)
        return verdict, reason

    @staticmethod
    def _write_answer(plan: Plan, task_dir: RequestorTaskDir) -> None:
        path = task_dir.task_outputs / RESULT_FILE
        first = task_dir.root / FIRST
        if plan.answer() is None or not first.exists():
            path.unlink(missing_ok=True)
            return
        nonce = json.loads(first.read_text())
        path.write_text(json.dumps({"nonce": nonce, "hash": pow.digest(plan.input, nonce).hex()}) + "\n")


if __name__ == "__main__":
    serve("first_come", requestor=FirstComeRequestor)
