"""tutorialapp's provider side: searches one nonce range."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from apps.sdk import InvalidArgument, JsonDict, ProviderAppHandler, ProviderTaskDir
from apps.tutorialapp import pow
from apps.tutorialapp.requestor import RESULT_FILE


def search_range(params: JsonDict) -> JsonDict:
    """Check a subtask's parameters and search its range: the result file's content."""
    try:
        text, difficulty, start, end = (params["input"], params["difficulty"], params["start"], params["end"])
    except KeyError as exc:
        raise InvalidArgument(f"subtask parameter {exc} is missing") from exc
    if not (
        isinstance(text, str) and all(isinstance(v, int) for v in (difficulty, start, end)) and start <= end
    ):
        raise InvalidArgument(f"bad subtask parameters: {params!r}")
    nonce = pow.search(text, difficulty, start, end)
    return {
        "start": start,
        "end": end,
        "nonce": nonce,
        "hash": None if nonce is None else pow.digest(text, nonce).hex(),
    }


class TutorialProvider(ProviderAppHandler):
    """Finds the smallest nonce of its range that meets the difficulty and writes `<subtask>/result.json`."""

    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        result = await asyncio.to_thread(search_range, params)
        output = Path(subtask_id) / RESULT_FILE
        (task_dir.root / output).write_text(json.dumps(result))
        return output

    async def run_benchmark(self, work_dir: Path) -> float:
        return await asyncio.to_thread(pow.benchmark)
