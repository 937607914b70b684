"""What a provider is doing and has done: subtasks running now, verdicts on its results, fuel earned.

Kept in memory for the provider's dashboard; the requestor's store stays the record that bills.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from protos import node_pb2 as npb
from runtime.node.store import now_ms

RECENT = 20
"""Rejections and failures remembered, newest last."""


@dataclass(frozen=True)
class RunningSubtask:
    subtask_id: str
    task_id: str
    app_name: str
    env_id: str
    started_ms: int


@dataclass
class ProviderActivity:
    running: dict[str, RunningSubtask] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    fuel_earned: int = 0
    """Fuel of this provider's accepted results (what the requestor bills wasm work by)."""
    cpu_ns_earned: int = 0
    setbacks: deque[tuple[str, str, str]] = field(default_factory=lambda: deque(maxlen=RECENT))
    """(subtask id, 'rejected' or 'failed', reason) of the latest results that earned nothing."""

    def started(self, assignment: npb.Assignment) -> None:
        self.running[assignment.subtask_id] = RunningSubtask(
            assignment.subtask_id, assignment.task_id, assignment.app_name, assignment.env_id, now_ms()
        )

    def ended(self, subtask_id: str) -> None:
        self.running.pop(subtask_id, None)

    def judged(self, subtask_id: str, reply: npb.SubmitVerdict, usage: npb.Usage) -> None:
        """The requestor's verdict on a delivered result."""
        if reply.verdict == "accepted":
            self.accepted += 1
            self.fuel_earned += usage.fuel
            self.cpu_ns_earned += usage.cpu_ns
        elif reply.verdict == "rejected":
            self.rejected += 1
            self.setbacks.append((subtask_id, "rejected", reply.reason))

    def failed_here(self, subtask_id: str, reason: str) -> None:
        self.failed += 1
        self.setbacks.append((subtask_id, "failed", reason))
