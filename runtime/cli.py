"""The `taskapi` command line."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import click
from grpclib.exceptions import GRPCError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from apps.sdk.lifecycle import LifecycleError, LocalLifecycle, TaskOutcome, TaskProgress
from runtime.catalog import UnknownApp, find_app

console = Console(stderr=True)


def parse_settings(settings: tuple[str, ...]) -> dict[str, Any]:
    """`key=value` pairs into task parameters; a value is JSON when it parses as JSON, else a string."""
    params: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@click.group()
@click.version_option(package_name="taskapi")
def main() -> None:
    """taskapi: a sandboxed, WASM-first compute runtime speaking Golem's task-api."""


@main.command()
@click.argument("app")
@click.option(
    "--env", "env", default=None, help="Environment to compute in (default: wasm where the app has it)."
)
@click.option(
    "--providers", default=2, show_default=True, type=click.IntRange(min=1), help="Local providers."
)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A task parameter (repeatable).")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy the task's outputs here (default: ./taskapi-output/TASK_ID).",
)
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep app work dirs here.")
@click.option("--max-subtasks", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def run(
    app: str,
    env: str | None,
    providers: int,
    settings: tuple[str, ...],
    output: Path | None,
    work_dir: Path | None,
    max_subtasks: int,
    as_json: bool,
) -> None:
    """Run one task of APP end to end on this machine and collect its outputs."""
    params = parse_settings(settings)
    try:
        env_used, command = find_app(app).command(env)
    except UnknownApp as exc:
        raise click.UsageError(str(exc)) from exc
    task_id = f"{app}-{uuid.uuid4().hex[:12]}"
    work_root = work_dir or Path(tempfile.mkdtemp(prefix="taskapi-run-"))
    began = time.monotonic()
    try:
        outcome = _run_with_progress(command, work_root, task_id, params, providers, max_subtasks)
        outputs = _collect(outcome, output or Path("taskapi-output") / task_id)
    except (GRPCError, LifecycleError) as exc:
        message = exc.message if isinstance(exc, GRPCError) else str(exc)
        raise click.ClickException(f"task {task_id} failed: {message}") from exc
    finally:
        if work_dir is None:
            shutil.rmtree(work_root, ignore_errors=True)
    summary: dict[str, Any] = {
        "task_id": task_id,
        "app": app,
        "env": env_used,
        "outputs": [str(p) for p in outputs],
        "verified_subtasks": outcome.progress.verified,
        "failed_subtasks": outcome.progress.failed,
        "wall_s": round(time.monotonic() - began, 3),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        console.print(
            f"[green]task {task_id} done[/] on {env_used} ({summary['wall_s']} s): "
            + ", ".join(summary["outputs"])
        )


def _run_with_progress(
    command: list[str],
    work_root: Path,
    task_id: str,
    params: dict[str, Any],
    providers: int,
    max_subtasks: int,
) -> TaskOutcome:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task(task_id, total=None, counts="")

        def on_progress(state: TaskProgress) -> None:
            counts = f"verified {state.verified}  failed {state.failed}  running {state.in_flight}"
            progress.update(bar, completed=state.verified, counts=counts)

        lifecycle = LocalLifecycle(command, work_root, providers=providers, on_progress=on_progress)
        return asyncio.run(lifecycle.run(task_id, params, max_subtasks))


def _collect(outcome: TaskOutcome, output: Path) -> list[Path]:
    """Copy the task's outputs into `output`, keeping their layout under task_outputs."""
    output.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in outcome.outputs:
        target = output / path.relative_to(outcome.outputs_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target)
    return copied
