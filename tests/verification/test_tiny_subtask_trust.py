"""Benchmark integrity judges work, not overhead: an honest provider whose subtasks are tiny keeps its trust.

Tiny subtasks take the node's fixed cost per subtask (round trips, instantiation, verification): their fuel
over that time is far below any real speed. With no time floor (`speed_min_ms=0`), only the fuel floor
(`speed_min_fuel`) stands between them and an "inflated" verdict on an honest claim.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.node.trust import TrustPolicy

from .harness import Harness, config
from .test_forgeries import assert_honest_all_accepted

TINY_POW = {"input": "bench-trivial-148", "difficulty": 12, "subtasks": 64}
"""Ranges of 64 nonces, about a million fuel each: the answer lies in the last range."""


def test_an_honest_provider_of_tiny_subtasks_keeps_its_trust(tmp_path: Path, honest_score: float) -> None:
    policy = TrustPolicy(speed_min_ms=0)

    async def scenario() -> None:
        async with Harness(tmp_path, config(policy), honest_score) as h:
            h.provider("honest")
            status = await h.run_task("tutorialapp", TINY_POW)
            assert status.state == "finished", status.reason
            record = h.node.verification.trust.get(h.id("honest"))
            assert record.accepted >= 32, record
            assert record.speed_samples == 0 and not record.benchmark_inflated, record
            (trust,) = h.node.task_status(status.task_id).trust
            assert trust.trust == 1.0 and not trust.benchmark_inflated, trust
            assert_honest_all_accepted(h, set())

    asyncio.run(scenario())
