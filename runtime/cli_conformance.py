"""`taskapi conformance APP`: the black-box conformance suite (runtime.conformance) from the command line."""

from __future__ import annotations

import random
import shlex
import time
from pathlib import Path

import click
from rich.console import Console

from runtime.appmanager import AppManager, AppNotAvailable
from runtime.conformance.params import parse_examples
from runtime.conformance.properties import PROPERTIES
from runtime.conformance.report import print_summary
from runtime.conformance.runner import run_suite
from runtime.conformance.session import SuiteConfig
from runtime.conformance.target import target_of

console = Console(stderr=True)


@click.command("conformance")
@click.argument("app")
@click.option("--env", default=None, help="The build to test (default: the app's default environment).")
@click.option(
    "--examples",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Hypothesis examples of each call-sequence machine (whole-task properties get a tenth).",
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
    seed: int | None,
    report_path: Path | None,
    param_examples: tuple[str, ...],
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
    except (AppNotAvailable, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    config = SuiteConfig(
        examples=examples,
        seed=seed,
        param_examples=tuple(examples_given),
        only=frozenset(only) if only else None,
    )
    reproduce = ["taskapi", "conformance", app, "--env", build.environment, "--examples", str(examples)]
    reproduce += ["--seed", str(seed), *(arg for text in param_examples for arg in ("--params", text))]
    reproduce += [arg for name in only for arg in ("--property", name)]
    console.print(f"[bold]conformance[/] of {target.label()}, seed {seed}")
    began = time.monotonic()

    def progress(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - began:6.1f} s  {text}[/]")

    report = run_suite(target, config, work_dir=work_dir, reproduce=shlex.join(reproduce), progress=progress)
    print_summary(report, console)
    if report_path is not None:
        report.write(report_path)
        console.print(f"report: {report_path}")
    if not report.passed:
        raise SystemExit(1)
