"""Planted bug: Verify trusts the provider's claim. It only reads the nonce out of the result (when it
can) and never recomputes anything, so an empty file or another subtask's result verifies.

Caught by: verify_rejects_mutated_result.
"""

from __future__ import annotations

import json

from apps.sdk import RequestorTaskDir, VerifyResult
from apps.tutorialapp.plan import RangeState, open_plan
from apps.tutorialapp.requestor import RESULT_FILE, TutorialRequestor, write_answer

from .serve import serve


class TrustingRequestor(TutorialRequestor):
    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        with open_plan(task_dir.root) as plan:
            index = plan.index_of(subtask_id)
            if index is None or plan.ranges[index].state is not RangeState.ASSIGNED:
                return VerifyResult.FAILURE, f"subtask {subtask_id} holds no assigned range"
            try:
                claim = json.loads((task_dir.subtask_outputs(subtask_id) / RESULT_FILE).read_text())
            except (OSError, ValueError):
                claim = {}
            nonce = claim.get("nonce") if isinstance(claim, dict) else None
            # the bug: the claim is recorded as the range's result with no check at all
            plan.complete(index, nonce if isinstance(nonce, int) and not isinstance(nonce, bool) else None)
        write_answer(plan, task_dir)
        return VerifyResult.SUCCESS, ""


if __name__ == "__main__":
    serve("verify_anything", requestor=TrustingRequestor)
