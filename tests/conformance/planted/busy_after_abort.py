"""Planted bug: a background thread writes each task's progress into its task dir every few
milliseconds, and AbortTask does not stop it, so an aborted task's dir keeps changing.

Caught by: abort_task_stops_work.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from apps.sdk import CreatedTask, JsonDict, RequestorTaskDir
from apps.tutorialapp.requestor import TutorialRequestor

from .serve import serve


def _report_progress(root: Path) -> None:
    while root.exists():
        (root / "progress.json").write_text(json.dumps({"at": time.monotonic_ns()}))
        time.sleep(0.005)


class ReportingRequestor(TutorialRequestor):
    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        created = await super().create_task(task_dir, max_subtasks_count, params)
        # the bug: nothing ever stops this thread, not even AbortTask
        threading.Thread(target=_report_progress, args=(task_dir.root,), daemon=True).start()
        return created


if __name__ == "__main__":
    serve("busy_after_abort", requestor=ReportingRequestor)
