"""The properties the conformance suite checks, and how a check reports a violation of one.

Every property has a stable name (the report's key) and a one-line statement. A check that finds a
violation raises the property's own `PropertyViolation` subclass, so Hypothesis tells the properties
apart while it shrinks, and the runner knows which property a minimal failing example belongs to.
Once a property has failed, the runner runs its group again with that property *disabled*: a violation
of it then only counts (`Checks.fail` returns), so the group's other properties still get every example.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NoReturn

from hypothesis import reject


@dataclass(frozen=True)
class Property:
    """One property: its report name, what it states, and whether it needs a wasm build."""

    name: str
    statement: str
    wasm_only: bool = False


PROPERTIES: tuple[Property, ...] = (
    Property(
        "requestor_protocol",
        "RequestorApp replies follow the state machine and error codes of docs/protocol.md "
        "(statuses, readable messages, reply fields, the four task folders)",
    ),
    Property(
        "provider_protocol",
        "ProviderApp replies follow docs/protocol.md in single-call and persistent mode "
        "(statuses, output path a file in the task dir, exit code 0 after the last call)",
    ),
    Property(
        "has_pending_implies_next_subtask", "HasPendingSubtasks true => NextSubtask hands out a subtask"
    ),
    Property(
        "next_subtask_only_when_pending",
        "NextSubtask hands out a subtask only when HasPendingSubtasks says true (none once all work is out)",
    ),
    Property(
        "subtask_resources_exist", "every resource a subtask names is a file in the task's subtask_inputs/"
    ),
    Property(
        "compute_writes_only_subtask_dir",
        "Compute creates, changes and deletes nothing in the provider's task dir outside <subtask_id>/",
    ),
    Property(
        "verify_accepts_honest_result", "Verify of a result computed by the app's own ProviderApp is SUCCESS"
    ),
    Property(
        "verify_rejects_mutated_result",
        "Verify never gives SUCCESS for a mutated result: a bit flip, a truncation, another subtask's "
        "output, an empty file",
    ),
    Property(
        "complete_task_has_result",
        "an active task with no pending and no assigned subtask has its result in task_outputs/",
    ),
    Property(
        "discard_makes_work_pending",
        "after DiscardSubtasks the discarded work is handed out again as needed: the task completes with the "
        "same task_outputs as without discards",
    ),
    Property(
        "result_independent_of_arrival_order",
        "the task's task_outputs bytes do not depend on the order in which results arrive and are verified",
    ),
    Property(
        "subtasks_within_max",
        "a task run to its end with honest results needs at most max_subtasks_count successful subtasks",
    ),
    Property(
        "abort_task_stops_work",
        "after AbortTask nothing is pending, nothing is handed out or verified, and the task dir stops "
        "changing",
    ),
    Property(
        "shutdown_graceful_and_prompt",
        "Shutdown answers OK, later calls get UNAVAILABLE, the server exits with code 0 within the bound, "
        "and a restarted requestor still knows its tasks",
    ),
    Property(
        "benchmark_positive_and_bounded",
        "RunBenchmark (requestor and provider) returns a finite score > 0 within the bound",
    ),
    Property(
        "wasm_compute_deterministic",
        "two runs of one subtask in fresh provider dirs give identical output bytes and fuel",
        wasm_only=True,
    ),
)

BY_NAME = {prop.name: prop for prop in PROPERTIES}


class PropertyViolation(AssertionError):
    """A counterexample to one property; `property_name` names it."""

    property_name = ""


def _violation_type(name: str) -> type[PropertyViolation]:
    return type(f"Violation[{name}]", (PropertyViolation,), {"property_name": name})


VIOLATIONS: dict[str, type[PropertyViolation]] = {
    prop.name: _violation_type(prop.name) for prop in PROPERTIES
}


@dataclass
class Checks:
    """The checks of one Hypothesis run: which properties are still enabled, and what was checked."""

    disabled: frozenset[str] = frozenset()
    exercised: Counter[str] = field(default_factory=Counter)
    also_violated: Counter[str] = field(default_factory=Counter)

    def check(self, name: str, ok: bool, message: str | None = None) -> bool:
        """Count one check of `name`; a failed one (`ok` False) is a violation (see `fail`)."""
        self.exercised[name] += 1
        if not ok:
            self.fail(name, message or f"{name} does not hold")
        return ok

    def fail(self, name: str, message: str) -> None:
        """Raise the violation of `name`; if it is disabled, count it and return."""
        if name not in VIOLATIONS:
            raise KeyError(f"unknown property {name!r}")
        if name in self.disabled:
            self.also_violated[name] += 1
            return
        raise VIOLATIONS[name](f"[{name}] {message}")

    def fail_and_drop(self, name: str, message: str) -> NoReturn:
        """Like `fail`, but a disabled violation also drops the example (the model lost track of the app)."""
        self.fail(name, message)
        reject()
