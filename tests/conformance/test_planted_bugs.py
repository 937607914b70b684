"""Every planted bug is caught by name: the suite fails the app on the property the bug breaks.

Each app runs with only the groups of that property (a few dozen examples, seconds each); one of them
also runs the whole suite, to show that a single bug fails a single property.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runtime.conformance.report import Report
from runtime.conformance.runner import run_suite
from runtime.conformance.session import SuiteConfig
from runtime.conformance.target import command_target

from .support import ALSO_CAUGHT, TUTORIAL_SCHEMA, planted_target

SEED = 20240611

# app -> (the property it must fail, examples)
PLANTED_BUGS = {
    "verify_anything": ("verify_rejects_mutated_result", 40),
    "early_round": ("next_subtask_only_when_pending", 100),
    "writes_outside": ("compute_writes_only_subtask_dir", 40),
    "first_come": ("result_independent_of_arrival_order", 500),
    "hanging_shutdown": ("shutdown_graceful_and_prompt", 20),
    # beyond the list: one bug for each remaining whole-task property
    "lost_discard": ("discard_makes_work_pending", 100),
    "missing_resource": ("subtask_resources_exist", 30),
    "busy_after_abort": ("abort_task_stops_work", 50),
    "over_budget": ("subtasks_within_max", 30),
}


def failed(report: Report) -> dict[str, str]:
    return {prop.name: prop.counterexample or "" for prop in report.properties if prop.status == "failed"}


def check_caught(report: Report, expected: str) -> None:
    found = failed(report)
    assert expected in found, f"{expected} not among the failures {sorted(found)}: {report.model_dump_json()}"
    assert found[expected].strip(), "a failed property needs its minimal failing example"
    assert not report.passed


@pytest.mark.parametrize("app", sorted(PLANTED_BUGS))
def test_a_planted_bug_fails_its_property(app: str, tmp_path: Path) -> None:
    expected, examples = PLANTED_BUGS[app]
    # shutdown_bound_s: the hanging app never exits, so the bound is only ever waited out: keep it short
    config = SuiteConfig(examples=examples, seed=SEED, only=frozenset({expected}), shutdown_bound_s=3)
    report = run_suite(planted_target(app), config, work_dir=tmp_path)
    check_caught(report, expected)
    assert set(failed(report)) <= {expected} | ALSO_CAUGHT.get(app, set())


def test_nondeterministic_wasm_output_fails_determinism(stamped_module: Path, tmp_path: Path) -> None:
    target = command_target(
        "wasm_stamped",
        [sys.executable, "-m", "environments.wasm", str(stamped_module)],
        environment="wasm",
        parameters=TUTORIAL_SCHEMA,
        wasm_module=stamped_module,
    )
    config = SuiteConfig(examples=50, seed=SEED, only=frozenset({"wasm_compute_deterministic"}))
    report = run_suite(target, config, work_dir=tmp_path)
    check_caught(report, "wasm_compute_deterministic")
    assert set(failed(report)) == {"wasm_compute_deterministic"}


@pytest.mark.slow
def test_one_bug_fails_only_its_properties_of_the_whole_suite(tmp_path: Path) -> None:
    report = run_suite(
        planted_target("verify_anything"), SuiteConfig(examples=20, seed=SEED), work_dir=tmp_path
    )
    found = set(failed(report))
    assert "verify_rejects_mutated_result" in found, report.model_dump_json(indent=1)
    assert found <= {"verify_rejects_mutated_result"} | ALSO_CAUGHT["verify_anything"], found
    statuses = {prop.name: prop.status for prop in report.properties}
    assert statuses["wasm_compute_deterministic"] == "not_applicable"
    assert all(
        status == "passed"
        for name, status in statuses.items()
        if name not in failed(report) and name != "wasm_compute_deterministic"
    )


def test_the_seed_replays_a_run(tmp_path: Path) -> None:
    config = SuiteConfig(examples=15, seed=SEED, only=frozenset({"verify_rejects_mutated_result"}))
    first = run_suite(planted_target("verify_anything"), config, work_dir=tmp_path / "first")
    second = run_suite(planted_target("verify_anything"), config, work_dir=tmp_path / "second")
    assert failed(first) == failed(second)
    assert [prop.checks for prop in first.properties] == [prop.checks for prop in second.properties]
