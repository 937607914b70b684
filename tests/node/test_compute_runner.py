"""A provider's app-server runner starts one reusable app server per task, however many computes of the
task arrive at once (capacity > 1), and `close()` leaves none behind."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from apps.sdk.workdir import ProviderTaskDir
from protos import node_pb2 as npb
from runtime.node.compute import AppServerRunner

from ..processes import children, command_line, gone

CONCURRENT = 3


def assignment(index: int) -> npb.Assignment:
    params = {"input": "race", "difficulty": 4, "start": index * 16, "end": (index + 1) * 16}
    return npb.Assignment(
        task_id="race-task",
        subtask_id=f"race-{index}",
        app_name="tutorialapp",
        subtask_params_json=json.dumps(params),
    )


def new_app_servers(before: set[int]) -> list[int]:
    return [
        pid
        for pid in children(os.getpid())
        if pid not in before and "tutorialapp provider" in command_line(pid) and not gone(pid)
    ]


async def compute_at_once(task_dir: ProviderTaskDir) -> tuple[list[int], list[int]]:
    """(the app servers started by CONCURRENT computes of one task, those of them left after close)."""
    before = set(children(os.getpid()))
    runner = AppServerRunner()
    try:
        computes = (runner.compute(assignment(i), task_dir, None) for i in range(CONCURRENT))
        outcomes = await asyncio.gather(*computes)
        assert all(outcome.output.is_file() for outcome in outcomes)
        started = new_app_servers(before)
    finally:
        await runner.close()
    return started, [pid for pid in started if not gone(pid)]


def test_concurrent_computes_of_a_task_share_one_reusable_server(tmp_path: Path) -> None:
    task_dir = ProviderTaskDir(tmp_path / "race-task")
    task_dir.prepare()
    started, left = asyncio.run(compute_at_once(task_dir))
    assert len(started) == 1, f"{len(started)} app servers for one task: {[command_line(p) for p in started]}"
    assert left == []
