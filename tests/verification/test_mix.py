"""A few hundred subtasks with honest providers and five kinds of forger on one requestor: every forged
result is caught and no honest result is rejected (the large run is bench/verification_overhead.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from .mix import CHEATERS, HONEST, describe, run_mix

GOAL = 400


def test_every_forgery_is_caught_and_no_honest_result_rejected(tmp_path: Path, honest_score: float) -> None:
    report = asyncio.run(run_mix(tmp_path, HONEST + CHEATERS, GOAL, seed=11, benchmark_score=honest_score))
    print(describe(report))
    assert report.results >= GOAL and report.failed_tasks == 0, describe(report)
    assert report.forged > 0, "no forger forged anything"
    assert report.escaped == [], describe(report)
    assert report.caught == report.forged
    assert report.caught_by_reexecution + report.caught_by_audit > 0, "the app's Verify caught everything"
    assert report.honest_results > 0 and report.honest_rejected == [], report.honest_rejected
