"""Honest and forging providers on one requestor over many tasks; what the ladder caught, and what it cost.

Shared by `tests/verification/test_mix.py` (a few hundred subtasks, asserting) and
`bench/verification_overhead.py` (a thousand and more, printing). The forgers' own records are the
ground truth: a result is forged when its bytes or fuel differ from the honest run's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.node.journal import Entry
from runtime.node.trust import TrustPolicy, sample_rate
from tests.verification.forger import ForgingRunner
from tests.verification.harness import Harness, config


@dataclass(frozen=True)
class Actor:
    """One provider: honest (no strategy) or a forger with its strategy and schedule."""

    name: str
    strategy: str | None = None
    honest_first: int = 0
    rate: float = 1.0
    capacity: int = 1


@dataclass(frozen=True)
class Workload:
    """A task to submit again and again; `{n}` in a string parameter becomes the task's number."""

    app: str
    params: dict[str, Any]

    def task_params(self, number: int) -> dict[str, Any]:
        return {k: v.format(n=number) if isinstance(v, str) else v for k, v in self.params.items()}


HONEST = [Actor(f"honest-{i}", capacity=2) for i in range(1, 5)]
CHEATERS = [
    Actor("flipper", "flip"),
    Actor("copier", "copy"),
    Actor("turncoat", "flip", honest_first=30),
    Actor("underbiller", "fuel_low", honest_first=60),
    Actor("lazy", "lazy", honest_first=20),
]
INTERMITTENT = [Actor("sometimes", "fuel_high", honest_first=80, rate=0.3)]
WORKLOADS = [
    Workload("tutorialapp", {"input": "mix-{n}", "difficulty": 14, "subtasks": 64}),
    Workload("mandelbrot", {"width": 64, "height": 160, "parts": 80, "max_iter": 96}),
]


@dataclass
class MixReport:
    """What happened to every delivered result."""

    results: int = 0
    tasks: int = 0
    failed_tasks: int = 0
    wall_s: float = 0.0
    forged: int = 0
    caught_by_app: int = 0
    caught_by_reexecution: int = 0
    caught_by_audit: int = 0
    caught_after_task_end: int = 0
    escaped: list[str] = field(default_factory=list)
    honest_results: int = 0
    honest_rejected: list[str] = field(default_factory=list)
    honest_fuel: int = 0
    honest_reexecuted_fuel: int = 0
    steady_fuel: int = 0
    steady_reexecuted_fuel: int = 0
    steady_results: int = 0
    steady_reexecuted: int = 0
    final_rates: dict[str, float] = field(default_factory=dict)

    @property
    def caught(self) -> int:
        return (
            self.caught_by_app
            + self.caught_by_reexecution
            + self.caught_by_audit
            + self.caught_after_task_end
        )

    @property
    def overhead(self) -> float:
        """Extra compute (re-executed fuel / accepted fuel) of honest providers, over the whole run."""
        return self.honest_reexecuted_fuel / self.honest_fuel if self.honest_fuel else 0.0

    @property
    def steady_overhead(self) -> float:
        """The same over results an honest provider delivered once it was trusted (rate at the floor)."""
        return self.steady_reexecuted_fuel / self.steady_fuel if self.steady_fuel else 0.0


async def run_mix(
    root: Path,
    actors: Sequence[Actor],
    goal: int,
    *,
    policy: TrustPolicy | None = None,
    seed: int = 1,
    workloads: Sequence[Workload] = WORKLOADS,
    in_flight: int = 2,
    benchmark_score: float = 0.0,
) -> MixReport:
    """Run tasks (`in_flight` at a time) until `goal` results were judged; classify every result."""
    policy = policy or TrustPolicy()
    began = time.monotonic()
    report = MixReport()
    async with Harness(root, config(policy, seed=seed), benchmark_score) as h:
        forgers: dict[str, ForgingRunner] = {}
        for number, actor in enumerate(actors):
            if actor.strategy is None:
                h.provider(actor.name, capacity=actor.capacity)
            else:
                forgers[actor.name] = h.forger(
                    actor.name,
                    actor.strategy,
                    honest_first=actor.honest_first,
                    rate=actor.rate,
                    seed=seed * 1000 + number,
                    capacity=actor.capacity,
                )
        running: set[asyncio.Task[Any]] = set()
        number = 0
        while _judged(h) < goal or running:
            while _judged(h) < goal and len(running) < in_flight:
                workload = workloads[number % len(workloads)]
                running.add(asyncio.create_task(h.run_task(workload.app, workload.task_params(number))))
                number += 1
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                report.tasks += 1
                report.failed_tasks += finished.result().state != "finished"
        _classify(report, h.journal(), forgers, policy)
        report.final_rates = {
            actor.name: sample_rate(h.node.verification.trust.get(h.id(actor.name)), policy)
            for actor in actors
        }
    report.wall_s = time.monotonic() - began
    return report


def _judged(h: Harness) -> int:
    return sum(entry.verdict != "assigned" for entry in h.journal())


def _classify(
    report: MixReport, journal: list[Entry], forgers: dict[str, ForgingRunner], policy: TrustPolicy
) -> None:
    forged = set().union(*(runner.forged for runner in forgers.values())) if forgers else set()
    seen: dict[str, int] = {}
    steady_after = int(policy.probation / policy.floor) if policy.floor else policy.probation
    for entry in journal:
        if entry.verdict == "assigned":
            continue  # never judged: no result came, or it came after its task ended
        report.results += 1
        if entry.subtask_id in forged:
            report.forged += 1
            _count_forged(report, entry)
            continue
        if entry.provider_id in forgers:
            continue  # a forger's honest result: neither side of the honest-provider numbers
        report.honest_results += 1
        if entry.verdict != "accepted":
            report.honest_rejected.append(f"{entry.subtask_id}: {entry.verdict} {entry.reason}")
            continue
        reexecuted = entry.reexec_fuel or 0 if entry.checked in ("reexecuted", "audit") else 0
        report.honest_fuel += entry.fuel or 0
        report.honest_reexecuted_fuel += reexecuted
        seen[entry.provider_id] = seen.get(entry.provider_id, 0) + 1
        if seen[entry.provider_id] > steady_after:
            report.steady_results += 1
            report.steady_fuel += entry.fuel or 0
            report.steady_reexecuted_fuel += reexecuted
            report.steady_reexecuted += reexecuted > 0


def _count_forged(report: MixReport, entry: Entry) -> None:
    if entry.verdict == "rejected":
        report.caught_by_app += 1
    elif entry.verdict != "forged":
        report.escaped.append(f"{entry.subtask_id} ({entry.provider_id}): {entry.verdict}")
    elif "after the task ended" in entry.reason:
        report.caught_after_task_end += 1
    elif entry.checked == "audit":
        report.caught_by_audit += 1
    else:
        report.caught_by_reexecution += 1


def describe(report: MixReport) -> str:
    """The report as lines of text."""
    forged = max(report.forged, 1)
    return "\n".join(
        [
            f"results judged: {report.results} in {report.tasks} tasks ({report.failed_tasks} failed), "
            f"{report.wall_s:.1f} s",
            f"forged results: {report.forged}; caught {report.caught} ({100 * report.caught / forged:.1f}%): "
            f"by the app's Verify {report.caught_by_app}, by re-execution at delivery "
            f"{report.caught_by_reexecution}, by audit while the task ran {report.caught_by_audit}, "
            f"by audit after the task ended {report.caught_after_task_end}; escaped {len(report.escaped)}",
            f"honest results: {report.honest_results}; rejected {len(report.honest_rejected)}",
            f"re-execution overhead of honest providers: {100 * report.overhead:.1f}% of their fuel overall, "
            f"{100 * report.steady_overhead:.1f}% once trusted ({report.steady_reexecuted} of "
            f"{report.steady_results} results re-executed)",
            "final re-execution rates: "
            + ", ".join(f"{name} {rate:.0%}" for name, rate in sorted(report.final_rates.items())),
        ]
    )
