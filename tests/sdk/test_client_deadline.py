"""A call that outlives the client's deadline reads DEADLINE_EXCEEDED, not "unreachable"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.client import RequestorAppClient
from apps.sdk.server import CallGate, RequestorAppService

from .helpers import FailingRequestor, in_process


class SlowBenchmark(FailingRequestor):
    async def run_benchmark(self, work_dir: Path) -> float:
        await asyncio.sleep(5)
        return 1.0


def test_a_slow_call_reports_deadline_exceeded(tmp_path: Path) -> None:
    async def scenario() -> GRPCError:
        gate = CallGate()
        async with in_process(RequestorAppService(tmp_path, SlowBenchmark(), gate), gate) as channel:
            client = RequestorAppClient(channel, timeout=0.2)
            try:
                await client.run_benchmark()
            except GRPCError as exc:
                return exc
        raise AssertionError("the call did not time out")

    error = asyncio.run(scenario())
    assert error.status is Status.DEADLINE_EXCEEDED
    assert "did not answer in time" in (error.message or "")
