"""Drives one task to completion the way a node would, in an order chosen by a schedule.

At each step the driver lists what a node could do next (hand out a subtask while HasPendingSubtasks is
true; deliver and Verify one outstanding result; while allowed, deliver a *mutated* result instead, or
discard one subtask) and the schedule picks one. The *reference* schedule always takes the first option:
every subtask is handed out before results arrive, and they arrive in the order they were handed out.
Honest results come from the app's own provider, so their Verify must be SUCCESS, and the task must end
complete: nothing pending, nothing outstanding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpclib.const import Status
from hypothesis import reject

from runtime.conformance.model import Verdict
from runtime.conformance.properties import Checks
from runtime.conformance.session import HonestResult, Session
from runtime.conformance.snapshot import file_tree
from runtime.conformance.wire import APP_ERRORS, TASK_OUTPUTS, Reply, RequestorWire, deliver, mismatch

Schedule = Callable[[list[str]], int]
"""Picks one of the options (their descriptions) by index."""

Mutator = Callable[[bytes], tuple[str, bytes] | None]
"""A mutation of an honest result and its description (None: none possible)."""

MAX_SUBTASKS_HANDED_OUT = 64


def reference_schedule(options: list[str]) -> int:
    return 0


@dataclass
class Outstanding:
    subtask_id: str
    params_json: str
    resources: list[str]


@dataclass
class Allowances:
    """What a run may do besides the happy path: discards, and mutated deliveries made by `mutator`."""

    discards: int = 0
    cheats: int = 0
    mutator: Mutator | None = None


@dataclass
class DrivenTask:
    """What a driven task ended with, the steps that got it there, and the mutations Verify accepted."""

    outputs: dict[str, bytes]
    steps: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    mutated: int = 0


class TaskDriver:
    """Runs tasks on one requestor (`wire` serving `work_dir`), checking what it sees on the way as
    property `owner` (the property the driven example is about) and the honest-result properties."""

    def __init__(
        self, session: Session, checks: Checks, wire: RequestorWire, work_dir: Path, owner: str
    ) -> None:
        self.session = session
        self.checks = checks
        self.wire = wire
        self.work_dir = work_dir
        self.owner = owner

    def call_ok(self, what: str, reply: Reply[Any], status: Status = Status.OK) -> bool:
        """A call that must answer `status` on this path; anything else violates the owner property."""
        problem = mismatch(what, reply, status)
        if problem is not None:
            self.checks.fail_and_drop(self.owner, problem)
        return problem is None

    def run(
        self,
        task_id: str,
        max_subtasks: int,
        params_json: str,
        schedule: Schedule,
        allowances: Allowances | None = None,
    ) -> DrivenTask:
        """Create the task and drive it to completion; an example whose task the app refuses (or that
        needs more than MAX_SUBTASKS_HANDED_OUT subtasks) is dropped."""
        left = allowances or Allowances()
        if self.wire.create_task(task_id, max_subtasks, params_json).status is not Status.OK:
            reject()
        task_dir = self.work_dir / task_id
        run = DrivenTask({}, [f"CreateTask({task_id}, {max_subtasks}, {params_json})"])
        outstanding: list[Outstanding] = []
        verified: list[str] = []
        handed_out = 0
        while True:
            pending = self.wire.has_pending_subtasks(task_id)
            self.call_ok(f"HasPendingSubtasks({task_id})", pending)
            options = (["next"] if pending.value().has_pending_subtasks else []) + [
                f"verify {item.subtask_id}" for item in outstanding
            ]
            if not options:  # complete; a discard of verified work may still reopen it
                if left.discards <= 0 or not verified:
                    break
                options = ["finish"]
            if left.cheats > 0 and left.mutator is not None:
                options += [f"cheat {item.subtask_id}" for item in outstanding]
            if left.discards > 0:
                options += [f"discard {sid}" for sid in [item.subtask_id for item in outstanding] + verified]
            choice = options[schedule(options)]
            run.steps.append(choice)
            action, _, subtask_id = choice.partition(" ")
            if action == "finish":
                break
            if action == "next":
                handed_out += 1
                if handed_out > MAX_SUBTASKS_HANDED_OUT:
                    reject()
                outstanding.append(self.next_subtask(task_id, f"s{handed_out}"))
                continue
            item = next((item for item in outstanding if item.subtask_id == subtask_id), None)
            if action == "verify" and item is not None:
                outstanding.remove(item)
                if self.verify_honest(task_id, task_dir, item):
                    verified.append(subtask_id)
            elif action == "cheat" and item is not None and left.mutator is not None:
                left.cheats -= 1
                verdict = self._cheat(task_id, task_dir, item, left.mutator, run)
                if verdict in (Verdict.SUCCESS, Verdict.FAILURE):
                    outstanding.remove(item)
                if verdict is Verdict.SUCCESS:
                    verified.append(subtask_id)
            elif action == "discard":
                left.discards -= 1
                reply = self.wire.discard_subtasks(task_id, [subtask_id])
                self.call_ok(f"DiscardSubtasks({task_id}, [{subtask_id}])", reply)
                if subtask_id in reply.value().discarded_subtask_ids:
                    outstanding = [item for item in outstanding if item.subtask_id != subtask_id]
                    verified = [sid for sid in verified if sid != subtask_id]
                    run.steps.append(f"  discarded {subtask_id}")
        run.outputs = file_tree(task_dir / TASK_OUTPUTS)
        return run

    def next_subtask(self, task_id: str, subtask_id: str) -> Outstanding:
        """NextSubtask, which must hand out work (call it only while HasPendingSubtasks is true)."""
        reply = self.wire.next_subtask(task_id, subtask_id)
        self.call_ok(f"NextSubtask({task_id}, {subtask_id})", reply)
        if not reply.value().HasField("subtask"):
            self.checks.fail_and_drop(
                "has_pending_implies_next_subtask",
                f"HasPendingSubtasks({task_id}) said true, then NextSubtask({subtask_id}) handed out nothing",
            )
        subtask = reply.value().subtask
        return Outstanding(subtask_id, subtask.subtask_params_json, list(subtask.resources))

    def honest(self, task_dir: Path, item: Outstanding) -> HonestResult:
        session = self.session
        return session.honest.result(self.checks, task_dir, item.subtask_id, item.params_json, item.resources)

    def verify_honest(self, task_id: str, task_dir: Path, item: Outstanding) -> bool:
        """Deliver the honest result and Verify it: it must be SUCCESS."""
        result = self.honest(task_dir, item)
        deliver(task_dir, item.subtask_id, result.name, result.content)
        reply = self.wire.verify(task_id, item.subtask_id)
        if reply.status in APP_ERRORS:
            self.checks.fail_and_drop(
                "verify_accepts_honest_result",
                f"Verify({task_id}, {item.subtask_id}) answered {reply.status.name} {reply.details!r} "
                "for the honest result",
            )
        self.call_ok(f"Verify({task_id}, {item.subtask_id})", reply)
        verdict = Verdict(reply.value().result)
        self.checks.check(
            "verify_accepts_honest_result",
            verdict is Verdict.SUCCESS,
            f"Verify({task_id}, {item.subtask_id}) of the honest result gave {verdict.name} "
            f"({reply.value().reason!r})",
        )
        return verdict is Verdict.SUCCESS

    def _cheat(
        self, task_id: str, task_dir: Path, item: Outstanding, mutator: Mutator, run: DrivenTask
    ) -> Verdict | None:
        """Deliver a mutation of the honest result and Verify it; None when no mutation was possible."""
        honest = self.honest(task_dir, item)
        mutation = mutator(honest.content)
        if mutation is None:
            return None
        description, content = mutation
        deliver(task_dir, item.subtask_id, honest.name, content)
        reply = self.wire.verify(task_id, item.subtask_id)
        if reply.status in APP_ERRORS:
            self.checks.fail_and_drop(
                "verify_rejects_mutated_result",
                f"Verify({task_id}, {item.subtask_id}) answered {reply.status.name} {reply.details!r} for a "
                f"mutated result ({description}) instead of rejecting it",
            )
        self.call_ok(f"Verify({task_id}, {item.subtask_id}) of a mutated result", reply)
        verdict = Verdict(reply.value().result)
        run.steps.append(f"  {description}: {verdict.name}")
        run.mutated += 1
        if verdict is Verdict.SUCCESS:
            run.accepted.append(f"{item.subtask_id}: {description}")
        return verdict
