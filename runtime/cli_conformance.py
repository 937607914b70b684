"""`taskapi conformance APP`: the black-box conformance suite (runtime.conformance) from the command line."""

from __future__ import annotations

import random
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click
from rich.console import Console

from environments.registry import environment_ids
from runtime.appmanager import AppManager, AppNotAvailable
from runtime.conformance.params import parse_examples, parse_pins
from runtime.conformance.properties import PROPERTIES
from runtime.conformance.report import print_summary
from runtime.conformance.runner import run_suite
from runtime.conformance.session import SuiteConfig
from runtime.conformance.target import target_of

console = Console(stderr=True)


@contextmanager
def _terminated_cleanly() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does: the app's servers and containers are stopped on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("conformance")
@click.argument("app")
@click.option(
    "--env",
    type=click.Choice(environment_ids()),
    default=None,
    help="The build to test (default: the app's default environment).",
)
@click.option(
    "--examples",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Hypothesis examples of each call-sequence machine (whole-task properties get a tenth).",
)
@click.option(
    "--task-examples",
    type=click.IntRange(min=1),
    default=None,
    help="Examples of each whole-task property (default: a tenth of --examples, at least 5), for apps "
    "whose whole tasks are costly.",
)
@click.option("--seed", type=int, default=None, help="Replay a run: its report's seed (default: random).")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON report here (what `provider join --require-conformance` reads).",
)
@click.option(
    "--params",
    "param_examples",
    multiple=True,
    metavar="JSON",
    help="Example task parameters (a JSON object), mixed into those drawn from the schema (repeatable).",
)
@click.option(
    "--set",
    "pins",
    multiple=True,
    metavar="NAME=VALUE",
    help="Pin a task parameter to VALUE (JSON, or else a string) in every task the suite draws, to keep a "
    "costly dimension cheap, e.g. --set resolution=32x24 (repeatable).",
)
@click.option(
    "--property",
    "only",
    multiple=True,
    type=click.Choice([prop.name for prop in PROPERTIES]),
    help="Check only these properties (repeatable; a partial report never passes the provider's check).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the app's work dirs and logs here (default: a temporary dir, removed).",
)
def conformance(
    app: str,
    env: str | None,
    examples: int,
    task_examples: int | None,
    seed: int | None,
    report_path: Path | None,
    param_examples: tuple[str, ...],
    pins: tuple[str, ...],
    only: tuple[str, ...],
    work_dir: Path | None,
) -> None:
    """Check APP against the task-api protocol and the properties every app must have, through gRPC only.

    Exit code 0 when every property passed, 1 when any failed (each with a minimal failing example).
    """
    try:
        build = AppManager().resolve(app, env)
        target = target_of(build)
        examples_given = parse_examples(param_examples)
        pinned = parse_pins(pins, target.parameters)
    except (AppNotAvailable, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    config = SuiteConfig(
        examples=examples,
        task_examples=task_examples,
        seed=seed,
        param_examples=tuple(examples_given),
        pinned=tuple(pinned.items()),
        only=frozenset(only) if only else None,
    )
    reproduce = ["taskapi", "conformance", app, "--env", build.environment, "--examples", str(examples)]
    reproduce += ["--task-examples", str(task_examples)] if task_examples is not None else []
    reproduce += ["--seed", str(seed), *(arg for text in param_examples for arg in ("--params", text))]
    reproduce += [arg for text in pins for arg in ("--set", text)]
    reproduce += [arg for name in only for arg in ("--property", name)]
    console.print(f"[bold]conformance[/] of {target.label()}, seed {seed}")
    began = time.monotonic()

    def progress(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - began:6.1f} s  {text}[/]")

    with _terminated_cleanly():
        report = run_suite(
            target, config, work_dir=work_dir, reproduce=shlex.join(reproduce), progress=progress
        )
    print_summary(report, console)
    if report_path is not None:
        report.write(report_path)
        console.print(f"report: {report_path}")
    if not report.passed:
        raise SystemExit(1)
