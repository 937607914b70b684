"""App state lives in the work dir: a requestor server killed (or shut down) and restarted on the same
work dir carries on with every task exactly where it stood."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk import VerifyResult
from apps.sdk.client import ProviderAppClient, RequestorAppClient
from apps.sdk.process import AppProcess, python_app_command
from apps.tutorialapp import pow

T = TypeVar("T")
HANG_GUARD_S = 120.0
TUTORIALAPP = python_app_command("apps.tutorialapp")
INPUT, DIFFICULTY = "restart", 7
PARAMS = {"input": INPUT, "difficulty": DIFFICULTY, "subtasks": 4}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD_S))


async def refused(call: Coroutine[Any, Any, object]) -> Status:
    with pytest.raises(GRPCError) as caught:
        await call
    return caught.value.status


class Node:
    """The node's side of one task: a requestor app process, a persistent provider, result delivery."""

    def __init__(self, root: Path) -> None:
        self.requestor_dir = root / "requestor"
        self.provider = AppProcess(TUTORIALAPP, "provider", root / "provider", persistent=True)
        self.requestor: AppProcess | None = None
        self.client: RequestorAppClient | None = None
        self.provider_client: ProviderAppClient | None = None

    async def start_requestor(self) -> RequestorAppClient:
        self.requestor = AppProcess(TUTORIALAPP, "requestor", self.requestor_dir)
        self.client = RequestorAppClient(await self.requestor.start())
        return self.client

    async def compute_and_deliver(self, task_id: str, subtask_id: str, params: dict[str, Any]) -> None:
        if self.provider_client is None:
            self.provider_client = ProviderAppClient(await self.provider.start())
        output = await self.provider_client.compute(task_id, subtask_id, params)
        target = self.requestor_dir / task_id / "subtask_outputs" / subtask_id
        target.mkdir(parents=True)
        shutil.copyfile(self.provider.work_dir / output, target / output.name)

    async def close(self) -> None:
        for client in (self.client, self.provider_client):
            if client is not None:
                client.close()
        for process in (self.requestor, self.provider):
            if process is not None:
                await process.kill()


@pytest.mark.parametrize("stop", ["kill", "shutdown"])
def test_a_restarted_requestor_continues_the_task(tmp_path: Path, stop: str) -> None:
    async def scenario() -> None:
        node = Node(tmp_path)
        try:
            client = await node.start_requestor()
            await client.create_task("pow", 4, PARAMS)
            await client.create_task("dropped", 2, PARAMS)
            await client.abort_task("dropped")
            first, second = await client.next_subtask("pow", "s0"), await client.next_subtask("pow", "s1")
            assert first is not None and second is not None
            await node.compute_and_deliver("pow", "s0", first.params)
            await node.compute_and_deliver("pow", "s1", second.params)
            assert await client.verify("pow", "s0") == (VerifyResult.SUCCESS, "")

            assert node.requestor is not None
            if stop == "kill":
                await node.requestor.kill()
            else:
                await client.shutdown()
                assert await node.requestor.wait(timeout=HANG_GUARD_S) == 0
            client.close()
            assert await refused(client.has_pending_subtasks("pow")) is Status.UNAVAILABLE

            client = await node.start_requestor()
            assert await refused(client.create_task("pow", 4, PARAMS)) is Status.ALREADY_EXISTS
            assert await refused(client.next_subtask("pow", "s1")) is Status.ALREADY_EXISTS
            assert await refused(client.verify("pow", "s0")) is Status.FAILED_PRECONDITION
            assert await refused(client.next_subtask("dropped", "s9")) is Status.FAILED_PRECONDITION
            assert await client.has_pending_subtasks("dropped") is False
            # Delivered before the restart, verified after it.
            assert await client.verify("pow", "s1") == (VerifyResult.SUCCESS, "")

            number = 2
            while await client.has_pending_subtasks("pow"):
                subtask_id = f"s{number}"
                subtask = await client.next_subtask("pow", subtask_id)
                assert subtask is not None
                await node.compute_and_deliver("pow", subtask_id, subtask.params)
                assert await client.verify("pow", subtask_id) == (VerifyResult.SUCCESS, "")
                number += 1
        finally:
            await node.close()

    run(scenario())
    nonce = pow.search(INPUT, DIFFICULTY, 0, 2**20)
    assert nonce is not None
    result = json.loads((tmp_path / "requestor" / "pow" / "task_outputs" / "result.json").read_text())
    assert result == {"nonce": nonce, "hash": pow.digest(INPUT, nonce).hex()}
