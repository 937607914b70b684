"""The property groups: one Hypothesis test each (a state machine, or an example body), with its
example budget, derived from the run's `--examples`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test

from runtime.conformance import determinism, lifecycle, task_properties
from runtime.conformance.properties import Checks
from runtime.conformance.provider_machine import ProviderMachine, ProviderServers
from runtime.conformance.requestor_machine import RequestorMachine
from runtime.conformance.session import Session, SuiteConfig

Test = Callable[[], None]
ExampleCounter = Callable[[], None]


@dataclass(frozen=True)
class Group:
    """One Hypothesis test: the properties it is about (the first owns errors and hangs), its examples,
    and how to make it for a `Checks` (counting each completed example with the counter)."""

    name: str
    properties: tuple[str, ...]
    max_examples: int
    make: Callable[[Checks, settings, ExampleCounter], Test]
    steps: int | None = None
    shrink: bool = True


def hypothesis_settings(
    config: SuiteConfig, max_examples: int, steps: int | None = None, shrink: bool = True
) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        stateful_step_count=steps or config.step_count,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])],
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.normal,
    )


def body_test(body: task_properties.ExampleBody, options: settings, count: ExampleCounter) -> Test:
    def run(data: st.DataObject) -> None:
        body(data)
        count()

    test: Test = settings(options)(given(st.data())(run))
    return test


def machine_test(make: Callable[[], RuleBasedStateMachine], options: settings, count: ExampleCounter) -> Test:
    def factory() -> RuleBasedStateMachine:
        count()
        return make()

    test: Test = get_state_machine_test(factory, settings=options)  # type: ignore[arg-type]
    return test


def groups_for(session: Session, servers: ProviderServers, twin: determinism.WasmTwin | None) -> list[Group]:
    n = session.config.examples
    few, handful = session.config.task_examples or max(5, n // 10), max(2, n // 100)
    groups = [
        Group(
            "requestor_sequences",
            (
                "requestor_protocol",
                "has_pending_implies_next_subtask",
                "next_subtask_only_when_pending",
                "subtask_resources_exist",
                "verify_accepts_honest_result",
                "verify_rejects_mutated_result",
                "complete_task_has_result",
            ),
            n,
            lambda checks, options, count: machine_test(
                lambda: RequestorMachine(session, checks), options, count
            ),
        ),
        Group(
            "provider_sequences",
            ("provider_protocol", "compute_writes_only_subtask_dir"),
            n,
            lambda checks, options, count: machine_test(
                lambda: ProviderMachine(session, servers, checks), options, count
            ),
            steps=max(3, session.config.step_count * 5 // 12),
        ),
        Group(
            "arrival_order",
            ("result_independent_of_arrival_order",),
            few,
            lambda checks, options, count: body_test(
                task_properties.arrival_order(session, checks), options, count
            ),
        ),
        Group(
            "mutations",
            ("verify_rejects_mutated_result",),
            few,
            lambda checks, options, count: body_test(
                task_properties.mutated_results(session, checks), options, count
            ),
        ),
        Group(
            "discards",
            ("discard_makes_work_pending",),
            few,
            lambda checks, options, count: body_test(
                task_properties.discards(session, checks), options, count
            ),
        ),
        Group(
            "subtask_budget",
            ("subtasks_within_max",),
            few,
            lambda checks, options, count: body_test(
                task_properties.subtasks_within_max(session, checks), options, count
            ),
        ),
        Group(
            "abort",
            ("abort_task_stops_work",),
            few,
            lambda checks, options, count: body_test(
                task_properties.abort_stops_work(session, checks), options, count
            ),
        ),
        Group(
            "shutdown",
            ("shutdown_graceful_and_prompt",),
            handful,
            lambda checks, options, count: body_test(lifecycle.shutdown(session, checks), options, count),
            shrink=False,  # its examples are two draws; each replay of a hang would wait the bound again
        ),
        Group(
            "benchmark",
            ("benchmark_positive_and_bounded",),
            1,
            lambda checks, options, count: body_test(lifecycle.benchmark(session, checks), options, count),
        ),
    ]
    if twin is not None:
        groups.append(
            Group(
                "wasm_determinism",
                ("wasm_compute_deterministic",),
                few,
                lambda checks, options, count: body_test(
                    determinism.deterministic(session, checks, twin), options, count
                ),
            )
        )
    only = session.config.only
    return [g for g in groups if only is None or only & set(g.properties)]
