"""`taskapi run`: one task end to end, a requestor and local providers in this process."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from protos import node_pb2 as npb
from runtime.appmanager import AppManager, AppNotAvailable
from runtime.cli_checks import environment_ready, writable_output
from runtime.cli_compute import compute_options
from runtime.cli_dashboard import dashboard_option, run_dashboard
from runtime.cli_inputs import input_files, task_options, with_params_file
from runtime.cli_interrupt import Interrupted, exit_interrupted, run_until_signalled
from runtime.cli_outputs import UnsafeOutput, collect_outputs
from runtime.cli_progress import RunDisplay, Tally
from runtime.cli_settings import parse_settings, task_params
from runtime.node.embedded import run_embedded
from runtime.node.errors import NodeError
from runtime.node.runners import runners_for, whitelist_of
from runtime.serving import serving_of

console = Console(stderr=True)
DEFAULT_OUTPUT = Path("taskapi-output")


@click.command()
@click.argument("app")
@compute_options(offering=False)
@click.option(
    "--providers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Providers started in this process.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A task parameter (repeatable). VALUE is JSON (16, true, '[1, 2]'), or text for a string parameter.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy the task's outputs here (default: ./taskapi-output/TASK_ID).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the node's state here, so an interrupted run resumes (default: a temporary dir, removed).",
)
@click.option(
    "--max-subtasks",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most subtasks the app may split the task into.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout at the end.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line and no summary; errors only.")
@click.option("--verbose", "-v", is_flag=True, help="Print each failed subtask with its reason.")
@dashboard_option
@task_options
def run(
    app: str,
    env: str | None,
    providers: int,
    capacity: int,
    settings: tuple[str, ...],
    params_file: Path | None,
    inputs: tuple[Path, ...],
    output: Path | None,
    data_dir: Path | None,
    max_subtasks: int,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    dashboard: str | None,
) -> None:
    """Run one task of APP end to end: a requestor and local providers in this process, over gRPC.

    Everything is checked before work starts (parameters, output dir, environment). The first Ctrl-C or
    SIGTERM stops the run within seconds; with --data-dir the same command resumes it.
    """
    params = with_params_file(params_file, parse_settings(settings))
    files = input_files(inputs)
    try:
        build = AppManager().resolve(app, env)
        serving_of(build)
    except AppNotAvailable as exc:
        raise click.UsageError(str(exc)) from exc
    params = task_params(build.label(), build.descriptor.parameters, params, settings)
    environment_ready(build.environment)
    display = RunDisplay(console, quiet=quiet, verbose=verbose)
    began = time.monotonic()
    try:
        with writable_output(output or DEFAULT_OUTPUT):
            root = data_dir or Path(tempfile.mkdtemp(prefix="taskapi-run-"))
            attach = run_dashboard(dashboard, root) if dashboard else None
            try:
                with display:
                    status = run_until_signalled(
                        run_embedded(
                            build.name,
                            build.environment,
                            params,
                            data_dir=root,
                            providers=providers,
                            capacity=capacity,
                            runners=lambda: runners_for([build.environment], [build]),
                            whitelist=whitelist_of([build]),
                            max_subtasks=max_subtasks,
                            on_status=display.update,
                            attach=attach,
                            inputs=files,
                        )
                    )
                if status.state != "finished":
                    raise click.ClickException(_unfinished(status, display.tally, verbose))
                outputs = collect_outputs(status, output or DEFAULT_OUTPUT / status.task_id)
            except (NodeError, UnsafeOutput) as exc:
                raise click.ClickException(str(exc)) from exc
            finally:
                if data_dir is None:
                    shutil.rmtree(root, ignore_errors=True)
    except Interrupted as exc:  # everything is stopped, the temporary dir and empty output dirs removed
        exit_interrupted(exc, _interrupted_line(exc, display, data_dir))
    summary: dict[str, Any] = {
        "task_id": status.task_id,
        "app": app,
        "env": build.environment,
        "outputs": [str(p) for p in outputs],
        "subtasks": dict(status.subtasks_by_state),
        "result_info": dict(status.result_info),
        "progress": display.tally.as_json(),
        "failures": [failure.as_json() for failure in display.tally.failures],
        "wall_s": round(time.monotonic() - began, 3),
    }
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet:
        done = f"[green]task {status.task_id} done[/] on {build.environment} ({summary['wall_s']} s)"
        console.print(f"{done}: {display.tally.text()}")
        console.print(f"outputs: {', '.join(summary['outputs']) or '(none)'}", highlight=False)
        for key, value in sorted(status.result_info.items()):
            console.print(f"{key}: {value}", highlight=False, markup=False)


def _unfinished(status: npb.TaskStatus, tally: Tally, verbose: bool) -> str:
    """Why the task did not finish, with its failed subtasks (all of them with --verbose, else a few)."""
    lines = [f"task {status.task_id} {status.state}: {status.reason} ({tally.text()})"]
    shown = tally.failures if verbose else tally.failures[-3:]
    lines += [f"  {failure.text()}" for failure in shown]
    if len(shown) < len(tally.failures):
        lines.append(f"  ... {len(tally.failures) - len(shown)} more (--verbose shows every one)")
    return "\n".join(lines)


def _interrupted_line(exc: Interrupted, display: RunDisplay, data_dir: Path | None) -> str:
    """The one line an interrupted run ends with: what it stopped, and how to resume (if it can)."""
    how = (
        f"resume with the same command (its state is in {data_dir})"
        if data_dir
        else "nothing was kept (give --data-dir DIR to be able to resume)"
    )
    if display.last is None:
        return f"interrupted ({exc}) before the task began; {how}"
    return (
        f"interrupted ({exc}): task {display.last.task_id}: stopped {display.running} running subtasks; {how}"
    )
