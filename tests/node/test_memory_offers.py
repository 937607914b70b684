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


@pytest.mark.parametrize(
    ("offered_mib", "gets_work"),
    [(32, False), (63, False), (64, True), (4096, True), (0, True)],
    ids=["32 MiB", "63 MiB", "exactly 64 MiB", "4 GiB", "not stated"],
)
def test_providers_get_work_only_with_enough_memory(
    tmp_path: Path, offered_mib: int, gets_work: bool
) -> None:
    async def scenario() -> tuple[int, int]:
        node = RequestorNode(tmp_path)
        await node.start()
        try:
            task_id = await node.submit_task("tutorialapp", "local", PARAMS, 4)
            row = node.store.task(task_id)
            assert row is not None
            node.join(ProviderOffer("provider-1", {"local": 1.0}, 1.0, 1, offered_mib))
            assignments = await node.request_work("provider-1", 1, 0)
            return row.min_memory_mib, len(assignments)
        finally:
            await node.stop()

    recorded, assigned = asyncio.run(scenario())
    assert recorded == 64  # tutorialapp's CreateTask answers its descriptor's figure
    assert assigned == (1 if gets_work else 0)


def test_tutorialapp_answers_its_descriptors_memory_need() -> None:
    builds = [app for app in AppManager().inventory().apps if app.name == "tutorialapp"]
    assert builds
    assert {app.descriptor.resources.min_memory_mib for app in builds} == {MIN_MEMORY_MIB}
