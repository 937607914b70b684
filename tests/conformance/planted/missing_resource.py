"""Planted bug: every subtask names a resource, `range.json`, that the app means to write into
subtask_inputs/ but never does (the write went to the task dir's root).

Caught by: subtask_resources_exist.
"""

from __future__ import annotations

import json

from apps.sdk import RequestorTaskDir, Subtask
from apps.tutorialapp.requestor import TutorialRequestor

from .serve import serve


class MisplacingRequestor(TutorialRequestor):
    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        subtask = await super().next_subtask(task_dir, subtask_id, opaque_node_id)
        if subtask is None:
            return None
        (task_dir.root / "range.json").write_text(json.dumps(subtask.params))  # the bug: wrong folder
        return Subtask(params=subtask.params, resources=["range.json"])


if __name__ == "__main__":
    serve("missing_resource", requestor=MisplacingRequestor)
