"""Properties about whole tasks: arrival order, discards, AbortTask, the subtask budget. Each is one
Hypothesis example body.

Arrival order and discards compare two runs of the same task (same task id, same parameters, subtask ids
`s1, s2, ...` in the order handed out): the reference run on the mirror requestor, the other on the
requestor under test. A correct app ends both with the same task_outputs bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grpclib.const import Status
from hypothesis import note, reject
from hypothesis import strategies as st

from runtime.conformance.mutations import JUDGED_BY_OUTCOME, mutate
from runtime.conformance.properties import Checks
from runtime.conformance.session import Session
from runtime.conformance.snapshot import changes, snapshot
from runtime.conformance.task_driver import (
    Allowances,
    DrivenTask,
    Mutator,
    Schedule,
    TaskDriver,
    reference_schedule,
)
from runtime.conformance.wire import Reply, deliver, mismatch

ExampleBody = Callable[[st.DataObject], None]


def drawn_schedule(data: st.DataObject) -> Schedule:
    """Results in reverse order (all handed out first), or any interleaving, drawn step by step."""
    if data.draw(st.sampled_from(["reverse", "any"]), label="arrival order") == "reverse":
        return _reverse
    return any_schedule(data)


def discarding_schedule(data: st.DataObject) -> Schedule:
    """The reference order, except that at any step one of the discards may be drawn instead."""

    def schedule(options: list[str]) -> int:
        indexes = [i for i, option in enumerate(options) if option.startswith("discard ")]
        if not indexes or not data.draw(st.booleans(), label="discard now"):
            return 0
        chosen: int = data.draw(st.sampled_from(indexes), label="which")
        return chosen

    return schedule


def any_schedule(data: st.DataObject) -> Schedule:
    """Any interleaving: every step drawn."""
    return lambda options: data.draw(st.integers(0, len(options) - 1), label=f"one of {options}")


def _reverse(options: list[str]) -> int:
    """Hand out while anything is pending, then verify the newest outstanding result first."""
    verifies = [i for i, option in enumerate(options) if option.startswith("verify ")]
    return verifies[-1] if verifies and options[0] != "next" else 0


def describe_difference(reference: dict[str, bytes], other: dict[str, bytes]) -> str:
    """Which task_outputs files differ (missing, extra, or with other bytes)."""
    parts = []
    for name in sorted(set(reference) | set(other)):
        if name not in other:
            parts.append(f"{name} missing")
        elif name not in reference:
            parts.append(f"{name} extra")
        elif reference[name] != other[name]:
            parts.append(f"{name} differs ({reference[name][:60]!r} vs {other[name][:60]!r})")
    return "; ".join(parts) or "no files"


def _compare(checks: Checks, name: str, reference: DrivenTask, other: DrivenTask, what: str) -> None:
    checks.check(
        "complete_task_has_result",
        bool(reference.outputs),
        "the task completed (nothing pending, every result verified) but task_outputs/ is empty",
    )
    checks.check(
        name,
        reference.outputs == other.outputs,
        f"task_outputs differ {what}: {describe_difference(reference.outputs, other.outputs)}; "
        f"reference steps: {' | '.join(reference.steps)}; other steps: {' | '.join(other.steps)}",
    )


def _two_runs(session: Session, checks: Checks, owner: str, data: st.DataObject, discards: int) -> None:
    """The reference run on the mirror, and a run in a drawn order (with `discards`) on the requestor."""
    task_id = session.fresh_id("task")
    spec = data.draw(session.wide_tasks, label="task")
    max_subtasks, params_json = spec.max_subtasks, spec.params_json
    mirror = TaskDriver(session, checks, session.mirror_wire(), session.mirror.work_dir, owner)
    reference = mirror.run(task_id, max_subtasks, params_json, reference_schedule)
    if reference.steps.count("next") < 2:
        reject()  # a task of one subtask has no order to vary
    driver = TaskDriver(session, checks, session.requestor_wire(), session.requestor.work_dir, owner)
    schedule = drawn_schedule(data) if discards == 0 else discarding_schedule(data)
    other = driver.run(task_id, max_subtasks, params_json, schedule, Allowances(discards=discards))
    note(f"reference: {reference.steps}\nother: {other.steps}")
    if discards and not any(step.startswith("  discarded") for step in other.steps):
        reject()  # the app discarded nothing (it may refuse): nothing to compare
    what = "between in-order arrival and this order" if discards == 0 else "after these discards"
    _compare(checks, owner, reference, other, what)


def arrival_order(session: Session, checks: Checks) -> ExampleBody:
    """result_independent_of_arrival_order: the reference order against a drawn interleaving."""
    return lambda data: _two_runs(session, checks, "result_independent_of_arrival_order", data, 0)


def discards(session: Session, checks: Checks) -> ExampleBody:
    """discard_makes_work_pending: the reference against a run with one to three discards."""

    def body(data: st.DataObject) -> None:
        _two_runs(session, checks, "discard_makes_work_pending", data, data.draw(st.integers(1, 3)))

    return body


def in_order_cheating(data: st.DataObject) -> Schedule:
    """Hand out while anything is pending; then the first outstanding result, honest or mutated (drawn)."""

    def schedule(options: list[str]) -> int:
        first = options[0]
        if not first.startswith("verify "):
            return 0
        subtask_id = first.removeprefix("verify ")
        choices = [i for i, option in enumerate(options) if option in (first, f"cheat {subtask_id}")]
        return data.draw(st.sampled_from(choices), label=f"honest or mutated result of {subtask_id}")

    return schedule


def drawn_mutator(data: st.DataObject) -> Mutator:
    def mutator(honest: bytes) -> tuple[str, bytes] | None:
        kind = data.draw(st.sampled_from(JUDGED_BY_OUTCOME), label="mutation")
        mutated = mutate(kind, honest, [], data)
        if mutated is None:
            return None
        pairs = enumerate(zip(honest, mutated, strict=False))
        changed = next((i for i, (a, b) in pairs if a != b), len(mutated))
        return f"{kind} at byte {changed} ({len(honest)} -> {len(mutated)} bytes)", mutated

    return mutator


def mutated_results(session: Session, checks: Checks) -> ExampleBody:
    """verify_rejects_mutated_result for bit flips and truncations: whatever Verify accepts must not change
    the task's result (the reference run got only honest results)."""
    owner = "verify_rejects_mutated_result"

    def body(data: st.DataObject) -> None:
        task_id = session.fresh_id("task")
        spec = data.draw(session.wide_tasks, label="task")
        max_subtasks, params_json = spec.max_subtasks, spec.params_json
        mirror = TaskDriver(session, checks, session.mirror_wire(), session.mirror.work_dir, owner)
        reference = mirror.run(task_id, max_subtasks, params_json, reference_schedule)
        driver = TaskDriver(session, checks, session.requestor_wire(), session.requestor.work_dir, owner)
        cheats = data.draw(st.integers(1, 3), label="mutated deliveries")
        allowances = Allowances(cheats=cheats, mutator=drawn_mutator(data))
        other = driver.run(task_id, max_subtasks, params_json, in_order_cheating(data), allowances)
        note(f"reference: {reference.steps}\nwith mutations: {other.steps}")
        if other.accepted:
            checks.check(
                owner,
                reference.outputs == other.outputs,
                f"Verify accepted mutated results ({'; '.join(other.accepted)}) and the task's result "
                f"changed: {describe_difference(reference.outputs, other.outputs)}; "
                f"steps: {' | '.join(other.steps)}",
            )
        elif other.mutated:
            checks.exercised[owner] += 1  # every mutated result was refused

    return body


def subtasks_within_max(session: Session, checks: Checks) -> ExampleBody:
    """subtasks_within_max: a task run to its end with honest results needs at most max_subtasks_count
    successful subtasks (Golem's lifecycle helper asserts this), whatever the parameters and arrival order."""
    owner = "subtasks_within_max"

    def body(data: st.DataObject) -> None:
        spec = data.draw(session.tasks, label="task")
        max_subtasks = data.draw(st.integers(1, 6), label="max_subtasks_count")
        driver = TaskDriver(session, checks, session.requestor_wire(), session.requestor.work_dir, owner)
        run = driver.run(session.fresh_id("task"), max_subtasks, spec.params_json, drawn_schedule(data))
        verified = [step for step in run.steps if step.startswith("verify ")]
        checks.check(
            owner,
            len(verified) <= max_subtasks,
            f"the task needed {len(verified)} successful subtasks with max_subtasks_count {max_subtasks} "
            f"(parameters {spec.params_json}); steps: {' | '.join(run.steps)}",
        )

    return body


def abort_stops_work(session: Session, checks: Checks) -> ExampleBody:
    """abort_task_stops_work: hand out some work, deliver some results, AbortTask, then nothing moves."""
    owner = "abort_task_stops_work"

    def expect(what: str, reply: Reply[Any], status: Status) -> None:
        problem = mismatch(what, reply, status)
        checks.check(owner, problem is None, problem)

    def body(data: st.DataObject) -> None:
        wire = session.requestor_wire()
        task_id = session.fresh_id("task")
        spec = data.draw(session.tasks, label="task")
        params_json = spec.params_json
        if wire.create_task(task_id, spec.max_subtasks, params_json).status is not Status.OK:
            reject()
        task_dir = session.requestor.work_dir / task_id
        driver = TaskDriver(session, checks, wire, session.requestor.work_dir, owner)
        handed_out = []
        for index in range(data.draw(st.integers(0, 3), label="subtasks handed out")):
            if not wire.has_pending_subtasks(task_id).value().has_pending_subtasks:
                break
            handed_out.append(driver.next_subtask(task_id, f"s{index}"))
        for item in handed_out:
            if data.draw(st.booleans(), label=f"deliver {item.subtask_id}"):
                result = session.honest.result(
                    checks, task_dir, item.subtask_id, item.params_json, item.resources
                )
                deliver(task_dir, item.subtask_id, result.name, result.content)
        expect(f"AbortTask({task_id})", wire.abort_task(task_id), Status.OK)
        before = snapshot(task_dir, contents=True)
        pending = wire.has_pending_subtasks(task_id)
        expect(f"HasPendingSubtasks({task_id}) after AbortTask", pending, Status.OK)
        if pending.status is Status.OK:
            checks.check(
                owner, not pending.value().has_pending_subtasks, "an aborted task has pending subtasks"
            )
        expect(
            f"NextSubtask({task_id}) after AbortTask",
            wire.next_subtask(task_id, "after-abort"),
            Status.FAILED_PRECONDITION,
        )
        for item in handed_out:
            expect(
                f"Verify({task_id}, {item.subtask_id}) after AbortTask",
                wire.verify(task_id, item.subtask_id),
                Status.FAILED_PRECONDITION,
            )
            expect(
                f"AbortSubtask({task_id}, {item.subtask_id}) after AbortTask",
                wire.abort_subtask(task_id, item.subtask_id),
                Status.FAILED_PRECONDITION,
            )
        expect(f"AbortTask({task_id}) again", wire.abort_task(task_id), Status.OK)
        other = session.fresh_id("task")
        if wire.create_task(other, 2, params_json).status is Status.OK:
            wire.has_pending_subtasks(other)
        moved = changes(before, snapshot(task_dir, contents=True))
        checks.check(owner, not moved, f"the aborted task's dir changed: {', '.join(moved[:8])}")

    return body
