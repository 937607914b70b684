"""The `taskapi` command line: `run` (everything in one process) and the node's commands."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from protos import node_pb2 as npb
from runtime.appmanager import App, AppManager, AppNotAvailable
from runtime.cli_apps import apps
from runtime.cli_conformance import conformance
from runtime.cli_dashboard import dashboard_option, run_dashboard
from runtime.cli_node import provider, requestor, task
from runtime.cli_replay import replay_command
from runtime.cli_settings import parse_settings
from runtime.node.embedded import Attach, run_embedded
from runtime.node.requestor import NodeError
from runtime.node.runners import runners_for, whitelist_of
from runtime.serving import serving_of

console = Console(stderr=True)


@click.group()
@click.version_option(package_name="taskapi")
def main() -> None:
    """taskapi: a sandboxed, WASM-first compute runtime speaking Golem's task-api."""


main.add_command(requestor)
main.add_command(provider)
main.add_command(task)


main.add_command(apps)
main.add_command(replay_command)
main.add_command(conformance)


@main.command()
@click.argument("app")
@click.option(
    "--env", "env", default=None, help="Environment to compute in (default: wasm where the app has it)."
)
@click.option(
    "--providers", default=2, show_default=True, type=click.IntRange(min=1), help="Local providers."
)
@click.option(
    "--capacity", default=1, show_default=True, type=click.IntRange(min=1), help="Subtasks per provider."
)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A task parameter (repeatable).")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy the task's outputs here (default: ./taskapi-output/TASK_ID).",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep node state here.")
@click.option("--max-subtasks", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@dashboard_option
def run(
    app: str,
    env: str | None,
    providers: int,
    capacity: int,
    settings: tuple[str, ...],
    output: Path | None,
    data_dir: Path | None,
    max_subtasks: int,
    as_json: bool,
    dashboard: str | None,
) -> None:
    """Run one task of APP end to end: a requestor and local providers in this process, over gRPC."""
    params = parse_settings(settings)
    try:
        build = AppManager().resolve(app, env)
        serving_of(build)
    except AppNotAvailable as exc:
        raise click.UsageError(str(exc)) from exc
    env_used = build.environment
    root = data_dir or Path(tempfile.mkdtemp(prefix="taskapi-run-"))
    attach = run_dashboard(dashboard, root) if dashboard else None
    began = time.monotonic()
    try:
        status = _run_with_progress(build, params, root, providers, capacity, max_subtasks, attach)
        if status.state != "finished":
            raise click.ClickException(f"task {status.task_id} {status.state}: {status.reason}")
        outputs = _collect(status, output or Path("taskapi-output") / status.task_id)
    except NodeError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    summary: dict[str, Any] = {
        "task_id": status.task_id,
        "app": app,
        "env": env_used,
        "outputs": [str(p) for p in outputs],
        "subtasks": dict(status.subtasks_by_state),
        "wall_s": round(time.monotonic() - began, 3),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        done = f"[green]task {status.task_id} done[/] on {env_used} ({summary['wall_s']} s)"
        console.print(f"{done}: {', '.join(summary['outputs']) or '(no outputs)'}")


def _run_with_progress(
    build: App,
    params: dict[str, Any],
    root: Path,
    providers: int,
    capacity: int,
    max_subtasks: int,
    attach: Attach | None,
) -> npb.TaskStatus:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task(build.name, total=None, counts="")

        def on_status(status: npb.TaskStatus) -> None:
            counts = dict(status.subtasks_by_state)
            done = counts.get("accepted", 0)
            running = counts.get("assigned", 0) + counts.get("delivered", 0)
            total = done + running if running else None
            text = f"accepted {done}  running {running}  failed {sum(counts.values()) - done - running}"
            progress.update(bar, description=status.task_id, completed=done, total=total, counts=text)

        return asyncio.run(
            run_embedded(
                build.name,
                build.environment,
                params,
                data_dir=root,
                providers=providers,
                capacity=capacity,
                runners=lambda: runners_for([build.environment]),
                whitelist=whitelist_of([build]),
                max_subtasks=max_subtasks,
                on_status=on_status,
                attach=attach,
            )
        )


def _collect(status: npb.TaskStatus, output: Path) -> list[Path]:
    """Copy the task's outputs into `output`, keeping their layout."""
    output.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in status.outputs:
        target = output / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(status.outputs_dir) / name, target)
        copied.append(target)
    return copied
