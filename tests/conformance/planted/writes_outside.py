"""Planted bug: Compute also keeps a copy of its result in the task dir's root ("to resume faster"),
outside its subtask's folder, where the next subtask on the same provider would find it.

Caught by: compute_writes_only_subtask_dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from apps.sdk import JsonDict, ProviderTaskDir
from apps.tutorialapp.provider import TutorialProvider

from .serve import serve


class CachingProvider(TutorialProvider):
    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        output = await super().compute(task_dir, subtask_id, params)
        shutil.copyfile(task_dir.root / output, task_dir.root / "last-result.json")  # the bug
        return output


if __name__ == "__main__":
    serve("writes_outside", provider=CachingProvider)
