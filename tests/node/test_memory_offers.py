"""`min_memory_mib` from the app's CreateTask is recorded, and a provider offering less memory gets none
of the task's subtasks (one that does not state its memory, as before offers had it, is taken at its word)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apps.tutorialapp.requestor import MIN_MEMORY_MIB
from runtime.appmanager import AppManager
from runtime.node.market import ProviderOffer
from runtime.node.requestor import RequestorNode

PARAMS = {"input": "memory", "difficulty": 1, "subtasks": 4}


@pytest.mark.parametrize("env", ["local", "wasm"])
@pytest.mark.parametrize(
    ("offered_mib", "gets_work"),
    [(32, False), (63, False), (64, True), (4096, True), (0, True)],
    ids=["32 MiB", "63 MiB", "exactly 64 MiB", "4 GiB", "not stated"],
)
def test_providers_get_work_only_with_enough_memory(
    tmp_path: Path, env: str, offered_mib: int, gets_work: bool
) -> None:
    async def scenario() -> tuple[int, int]:
        node = RequestorNode(tmp_path)
        await node.start()
        try:
            task_id = await node.submit_task("tutorialapp", env, PARAMS, 4)
            row = node.store.task(task_id)
            assert row is not None
            node.join(ProviderOffer("provider-1", {env: 1.0}, 1.0, 1, offered_mib))
            assignments = await node.request_work("provider-1", 1, 0)
            return row.min_memory_mib, len(assignments)
        finally:
            await node.stop()

    recorded, assigned = asyncio.run(scenario())
    assert recorded == 64  # tutorialapp's CreateTask (Python and C) answers its descriptors' figure
    assert assigned == (1 if gets_work else 0)


@pytest.mark.parametrize("app", ["tutorialapp", "mandelbrot"])
def test_shipped_builds_agree_on_the_memory_their_createtask_answers(app: str) -> None:
    """The Python tutorialapp answers MIN_MEMORY_MIB, the C apps 64 (their MIN_MEMORY_MIB)."""
    builds = [build for build in AppManager().inventory().apps if build.name == app]
    assert builds
    assert {build.descriptor.resources.min_memory_mib for build in builds} == {MIN_MEMORY_MIB}
