"""`taskapi apps`: list, add, enable, disable and show app builds (the app manager on the command line)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from environments.registry import environment_ids
from runtime.appmanager import (
    App,
    AppManager,
    AppNotAvailable,
    DescriptorError,
    DockerDescriptor,
    WasmDescriptor,
)
from runtime.appmanager.manager import DATA_DIR_ENV

ENV_OPTION = click.option(
    "--env", type=click.Choice(environment_ids()), default=None, help="Only the build for this environment."
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")


def prerequisites_text(app: App, *, full: bool = True) -> str:
    """One line saying what a build needs: wasm module (and hash when `full`), image, or Python module."""
    descriptor = app.descriptor
    if isinstance(descriptor, WasmDescriptor):
        module = descriptor.prerequisites.module
        return f"{module} (sha256 {descriptor.prerequisites.sha256})" if full else module
    if isinstance(descriptor, DockerDescriptor):
        image = f"{descriptor.prerequisites.image}:{descriptor.prerequisites.tag}"
        return f"{image}@{descriptor.prerequisites.digest}" if descriptor.prerequisites.digest else image
    return f"python -m {descriptor.prerequisites.module}"


def app_json(app: App, *, full: bool = False) -> dict[str, Any]:
    """An app build as JSON; `full` adds the whole validated descriptor."""
    data: dict[str, Any] = {
        "id": app.app_id,
        "name": app.name,
        "version": app.version,
        "environment": app.environment,
        "enabled": app.enabled,
        "builtin": app.builtin,
        "path": str(app.path),
    }
    if full:
        data["descriptor"] = app.descriptor.model_dump(mode="json")
    return data


def problem_json(error: DescriptorError) -> dict[str, Any]:
    """A descriptor that could not be loaded, as JSON."""
    return {
        "path": str(error.path),
        "problems": [{"field": p.field, "message": p.message} for p in error.problems],
    }


@click.group("apps")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATA_DIR_ENV,
    show_envvar=True,
    help="Where added apps and enable/disable choices live (default: ~/.local/share/taskapi).",
)
@click.pass_context
def apps(ctx: click.Context, data_dir: Path | None) -> None:
    """Manage app builds: shipped ones are enabled, added ones must be enabled before use."""
    ctx.obj = AppManager(data_dir)


@apps.command("list")
@JSON_OPTION
@click.pass_obj
def list_apps(manager: AppManager, as_json: bool) -> None:
    """Every app build, and every descriptor that could not be loaded (with why)."""
    inventory = manager.inventory()
    if as_json:
        payload = {
            "apps": [app_json(app) for app in inventory.apps],
            "problems": [problem_json(error) for error in inventory.problems],
        }
        click.echo(json.dumps(payload))
        return
    # Fits 80 columns: no outer border, and only the prerequisites column (the longest) folds.
    table = Table(
        "id", "app", "env", "on", "from", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0)
    )
    table.add_column("prerequisites", overflow="fold")
    for column in table.columns[:5]:
        column.no_wrap = True
    for app in inventory.apps:
        enabled = "[green]yes[/]" if app.enabled else "[red]no[/]"
        source = "shipped" if app.builtin else "added"
        table.add_row(
            app.app_id[:12],
            escape(f"{app.name} {app.version}"),
            app.environment,
            enabled,
            source,
            escape(prerequisites_text(app, full=False)),
        )
    Console().print(table)
    for error in inventory.problems:
        click.secho(f"not loaded: {error}", fg="red", err=True)


@apps.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--enable", is_flag=True, help="Enable it at once.")
@JSON_OPTION
@click.pass_obj
def add_app(manager: AppManager, path: Path, enable: bool, as_json: bool) -> None:
    """Validate the descriptor at PATH (a file, or a folder with descriptor.json) and add it."""
    try:
        app = manager.add(path, enable=enable)
    except DescriptorError as exc:
        raise click.ClickException(f"invalid descriptor:\n{exc}") from exc
    if as_json:
        click.echo(json.dumps(app_json(app)))
    elif app.enabled:
        click.echo(f"added {app.label()}, enabled")
    else:
        click.echo(f"added {app.label()}, disabled: enable it with `taskapi apps enable {app.app_id[:12]}`")


@apps.command("enable")
@click.argument("name_or_id")
@ENV_OPTION
@click.pass_obj
def enable_app(manager: AppManager, name_or_id: str, env: str | None) -> None:
    """Enable an app's builds (all of them for a name, unless --env), or one build by id."""
    _toggle(manager.enable, name_or_id, env, "enabled")


@apps.command("disable")
@click.argument("name_or_id")
@ENV_OPTION
@click.pass_obj
def disable_app(manager: AppManager, name_or_id: str, env: str | None) -> None:
    """Disable an app's builds (all of them for a name, unless --env), or one build by id."""
    _toggle(manager.disable, name_or_id, env, "disabled")


@apps.command("show")
@click.argument("name_or_id")
@ENV_OPTION
@JSON_OPTION
@click.pass_obj
def show_app(manager: AppManager, name_or_id: str, env: str | None, as_json: bool) -> None:
    """Everything about an app's builds: id, state, prerequisites, resources, task parameters."""
    try:
        builds = manager.find(name_or_id, env)
    except AppNotAvailable as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([app_json(app, full=True) for app in builds]))
        return
    console = Console()
    for app in builds:
        console.print(_details(app))
        if app.descriptor.parameters:
            console.print(_parameters(app))


def _toggle(
    action: Callable[[str, str | None], list[App]], name_or_id: str, env: str | None, done: str
) -> None:
    try:
        changed = action(name_or_id, env)
    except AppNotAvailable as exc:
        raise click.ClickException(str(exc)) from exc
    for app in changed:
        click.echo(f"{done} {app.label()}")


def _details(app: App) -> Table:
    descriptor = app.descriptor
    table = Table(
        title=escape(f"{app.name} {app.version} ({app.environment})"),
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = {
        "id": app.app_id,
        "enabled": "yes" if app.enabled else "no",
        "source": f"{'shipped' if app.builtin else 'added'}: {app.path}",
        "description": descriptor.description or "-",
        "prerequisites": prerequisites_text(app),
        "memory": f">= {descriptor.resources.min_memory_mib} MiB",
        "gpu": "required" if descriptor.resources.gpu else "no",
        "market strategy": descriptor.market_strategy,
        "max benchmark score": "-"
        if descriptor.max_benchmark_score is None
        else str(descriptor.max_benchmark_score),
    }
    for key, value in rows.items():
        table.add_row(key, escape(value))  # descriptor text is shown as written, never read as markup
    return table


def _parameters(app: App) -> Table:
    table = Table("parameter", "type", "required", "default", "description", title="task parameters")
    for name, spec in app.descriptor.parameters.items():
        default = "-" if spec.default is None else json.dumps(spec.default)
        table.add_row(
            escape(name),
            spec.type,
            "yes" if spec.required else "no",
            escape(default),
            escape(spec.description),
        )
    return table
