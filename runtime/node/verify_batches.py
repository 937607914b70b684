"""Deliveries of one task verified together: while a Verify call of a task is in flight, the results of that
task delivered meanwhile wait, and the next call (one VerifyBatch, apps/sdk/client.py) takes them all.

So a task whose results arrive faster than its app verifies them costs one app round trip per batch, not
per result; a result that arrives alone is verified at once, as before. The verdicts are the app's, one per
result, in the order the results were delivered; what the node does with each (re-execution, trust,
quorums: verification.py) is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib

from grpclib.exceptions import GRPCError

from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import VerifyResult

VerifyAnswer = tuple[VerifyResult, str, dict[str, str]]
"""What the app said of one result: its verdict, the reason, and the facts it reported (result_info)."""


class VerifyBatches:
    """Per task, one VerifyBatch call in flight at a time; results delivered meanwhile go in the next."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[str, asyncio.Future[VerifyAnswer]]]] = {}
        self._calls: dict[str, asyncio.Task[None]] = {}
        """Per task, the task making its calls until no result waits."""

    async def verify(self, client: RequestorAppClient, task_id: str, subtask_id: str) -> VerifyAnswer:
        """The app's verdict on one delivered result; the call's GRPCError if the call carrying it failed
        (a failed call fails every result it carried, as one failed Verify did)."""
        answer: asyncio.Future[VerifyAnswer] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(task_id, []).append((subtask_id, answer))
        if task_id not in self._calls:
            self._calls[task_id] = asyncio.create_task(self._call_until_drained(client, task_id))
        return await answer

    async def _call_until_drained(self, client: RequestorAppClient, task_id: str) -> None:
        batch: list[tuple[str, asyncio.Future[VerifyAnswer]]] = []
        try:
            while batch := [(s, a) for s, a in self._waiting.pop(task_id, []) if not a.done()]:
                try:
                    answers = await client.verify_batch(task_id, [subtask_id for subtask_id, _ in batch])
                except GRPCError as exc:
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (_, answer), verdict in zip(batch, answers, strict=True):
                    if not answer.done():
                        answer.set_result(verdict)
        except BaseException:
            for _, answer in batch:
                answer.cancel()
            raise
        finally:
            del self._calls[task_id]

    async def close(self) -> None:
        """Stop every call in flight; the results waiting on them are cancelled."""
        calls = list(self._calls.values())
        for call in calls:
            call.cancel()
        for call in calls:
            with contextlib.suppress(asyncio.CancelledError):
                await call
        for waiting in self._waiting.values():
            for _, answer in waiting:
                answer.cancel()
        self._waiting.clear()
