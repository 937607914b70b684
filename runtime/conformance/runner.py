"""Runs the suite: every property group under Hypothesis with one seed, collected into a `Report`.

A group is one Hypothesis test (a state machine, or an example body). When it fails, the violated
property gets the minimal failing example Hypothesis shrank to (the steps it reports), is disabled, and
the group runs again, so that one failure does not hide the group's other properties. Hypothesis runs
without a database and with `seed`, so the same seed against the same app replays the same examples.
"""

from __future__ import annotations

import contextlib
import datetime
import shlex
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import seed
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition, Unsatisfiable
from hypothesis.reporting import with_reporter

from runtime.conformance import determinism
from runtime.conformance.groups import Group, groups_for, hypothesis_settings
from runtime.conformance.properties import BY_NAME, PROPERTIES, Checks, PropertyViolation
from runtime.conformance.provider_machine import ProviderServers
from runtime.conformance.report import AppInfo, GroupResult, PropertyResult, Report
from runtime.conformance.session import Session, SuiteConfig
from runtime.conformance.target import Target, digest_kind
from runtime.conformance.wire import Hang, Loop

MAX_COUNTEREXAMPLE_CHARS = 12_000


@dataclass
class Outcome:
    """What the runs of a group found."""

    exercised: Counter[str]
    failures: dict[str, tuple[str, str]]
    examples_run: int = 0
    runs: int = 0
    note: str | None = None


def _counterexample(lines: list[str], exc: BaseException) -> str:
    notes = [note for note in getattr(exc, "__notes__", []) if "Falsifying" not in note or not lines]
    text = "\n".join([*(line.rstrip() for line in lines), *notes]).strip()
    return text[-MAX_COUNTEREXAMPLE_CHARS:]


def _first_violation(group: BaseExceptionGroup[BaseException]) -> PropertyViolation | None:
    for exc in group.exceptions:
        if isinstance(exc, PropertyViolation):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_violation(exc)
            if found is not None:
                return found
    return None


def _error(exc: BaseException, lines: list[str]) -> tuple[str, str]:
    """An error that is no property's violation: the app broke the suite's expectations some other way
    (a server that does not start, a reply that changes when an example is replayed), or a suite bug."""
    message = f"error: {type(exc).__name__}: {exc}"
    if isinstance(exc, FlakyStrategyDefinition):
        message += " (the app answered differently when Hypothesis replayed the same calls)"
    return message, _counterexample(lines, exc)


def _collector(lines: list[str]) -> Callable[[object], None]:
    return lambda value: lines.append(str(value))


def run_group(group: Group, config: SuiteConfig) -> Outcome:
    """Run a group until it passes with every failed property disabled (at most once per property)."""
    outcome = Outcome(Counter(), {})
    disabled: set[str] = set()
    options = hypothesis_settings(config, group.max_examples, group.steps, group.shrink)
    for _ in range(len(PROPERTIES) + 1):
        checks = Checks(disabled=frozenset(disabled))
        lines: list[str] = []
        report = _collector(lines)

        def count() -> None:
            outcome.examples_run += 1

        test = seed(config.seed)(group.make(checks, options, count))
        outcome.runs += 1
        try:
            with with_reporter(report):
                test()
        except PropertyViolation as exc:
            outcome.failures.setdefault(exc.property_name, (str(exc), _counterexample(lines, exc)))
            disabled.add(exc.property_name)
            if set(group.properties) <= disabled:
                break
            continue
        except FlakyFailure as exc:
            violation = _first_violation(exc)
            if violation is None:
                outcome.failures.setdefault(group.properties[0], _error(exc, lines))
            else:
                flaky = f"{violation} (flaky: the failure did not happen again when Hypothesis replayed it)"
                outcome.failures.setdefault(violation.property_name, (flaky, _counterexample(lines, exc)))
                disabled.add(violation.property_name)
                continue
        except Hang as exc:
            outcome.failures.setdefault(group.properties[0], (f"hang: {exc}", _counterexample(lines, exc)))
        except Unsatisfiable as exc:
            outcome.note = f"no example could be completed: {exc}"
        except Exception as exc:
            outcome.failures.setdefault(group.properties[0], _error(exc, lines))
        finally:
            outcome.exercised.update(checks.exercised)
        break
    return outcome


def _status(
    name: str, target: Target, exercised: Counter[str], failures: dict[str, tuple[str, str]], ran: set[str]
) -> str:
    if name in failures:
        return "failed"
    if (BY_NAME[name].wasm_only and target.wasm_module is None) or name not in ran:
        return "not_applicable"
    return "passed" if exercised[name] else "not_exercised"


def _reproduce(target: Target, config: SuiteConfig) -> str:
    command = ["taskapi", "conformance", target.name, "--env", target.environment]
    return shlex.join([*command, "--examples", str(config.examples), "--seed", str(config.seed)])


@contextlib.contextmanager
def _work_root(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:  # kept: a fresh folder inside it, so no earlier run's tasks are in the way
        work_dir.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="conformance-", dir=work_dir))
        return
    root = Path(tempfile.mkdtemp(prefix="taskapi-conformance-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_suite(
    target: Target,
    config: SuiteConfig,
    *,
    work_dir: Path | None = None,
    reproduce: str = "",
    progress: Callable[[str], None] = lambda text: None,
) -> Report:
    """Check every property of `target` (see `runtime.conformance.properties`) and report."""
    started = datetime.datetime.now(datetime.UTC)
    began = time.monotonic()
    exercised: Counter[str] = Counter()
    failures: dict[str, tuple[str, str]] = {}
    group_results: list[GroupResult] = []
    ran: set[str] = set()
    loop = Loop()
    try:
        with _work_root(work_dir) as root:
            session = Session(target, config, loop, root)
            servers = ProviderServers(session)
            twin = (
                determinism.WasmTwin(session, target.wasm_module) if target.wasm_module is not None else None
            )
            try:
                began_calibration = time.monotonic()
                try:
                    calibration = session.calibrate()
                except Exception as exc:  # the requestor does not start or answer: every group will say so
                    failures["requestor_protocol"] = (
                        f"error: calibration failed: {type(exc).__name__}: {exc}",
                        "",
                    )
                    calibration = session.calibration
                group_results.append(
                    GroupResult(
                        name="calibration",
                        max_examples=calibration.tried,
                        examples_run=len(calibration.accepted),
                        runs=1,
                        seconds=round(time.monotonic() - began_calibration, 2),
                        note=calibration.describe(),
                    )
                )
                progress(calibration.describe())
                for group in groups_for(session, servers, twin):
                    progress(f"{group.name}: up to {group.max_examples} examples")
                    group_began = time.monotonic()
                    outcome = run_group(group, config)
                    ran.update(group.properties)
                    exercised.update(outcome.exercised)
                    for name, failure in outcome.failures.items():
                        failures.setdefault(name, failure)
                        ran.add(name)
                    group_results.append(
                        GroupResult(
                            name=group.name,
                            max_examples=group.max_examples,
                            examples_run=outcome.examples_run,
                            runs=outcome.runs,
                            seconds=round(time.monotonic() - group_began, 2),
                            note=outcome.note,
                        )
                    )
            finally:
                servers.close()
                if twin is not None:
                    twin.close()
                session.close()
    finally:
        loop.close()
    results = []
    for prop in PROPERTIES:
        if config.only is not None and prop.name not in config.only and prop.name not in failures:
            continue
        status = _status(prop.name, target, exercised, failures, ran)
        message, counterexample = failures.get(prop.name, (None, None))
        results.append(
            PropertyResult(
                name=prop.name,
                statement=prop.statement,
                status=status,  # type: ignore[arg-type]
                checks=exercised[prop.name],
                message=message,
                counterexample=counterexample or None,
            )
        )
    return Report(
        app=AppInfo(
            name=target.name,
            version=target.version,
            environment=target.environment,
            app_id=target.app_id,
            digest=target.digest,
            digest_of=digest_kind(target.environment),
        ),
        seed=config.seed,
        examples=config.examples,
        started_at=started.isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - began, 2),
        passed=all(r.status in ("passed", "not_applicable") for r in results),
        properties=results,
        groups=group_results,
        reproduce=reproduce or _reproduce(target, config),
    )
