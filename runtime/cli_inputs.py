"""What a task takes besides `--set`: `--params FILE.json` (values too large for the command line) and
repeated `--input PATH` (files and folders for the task's `task_inputs/`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runtime.node.task_inputs import InputRefused, local_inputs

F = TypeVar("F", bound=Callable[..., Any])


def task_options(command: F) -> F:
    """`--params FILE.json` and `--input PATH` (repeatable), for commands that submit a task."""
    command = click.option(
        "--input",
        "inputs",
        multiple=True,
        type=click.Path(path_type=Path),
        metavar="PATH",
        help="A file or folder for the task's task_inputs/ (repeatable; a folder keeps its name and layout).",
    )(command)
    return click.option(
        "--params",
        "params_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Task parameters from a file holding a JSON object (for values too large for the command "
        "line); --set overrides single ones.",
    )(command)


def with_params_file(params_file: Path | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The parameters of `--params FILE.json`, with the `--set` ones (`settings`) over them."""
    if params_file is None:
        return settings
    try:
        loaded = json.loads(params_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {params_file}: {exc}", param_hint="--params") from exc
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{params_file} is not valid JSON: {exc}", param_hint="--params") from exc
    if not isinstance(loaded, dict):
        raise click.BadParameter(
            f"{params_file} must hold a JSON object, got {type(loaded).__name__}", param_hint="--params"
        )
    return {**loaded, **settings}


def input_files(inputs: tuple[Path, ...]) -> list[tuple[str, Path]]:
    """(name under task_inputs/, local file) for every `--input`; a refused one is a usage error naming it."""
    try:
        return local_inputs(inputs)
    except InputRefused as exc:
        raise click.BadParameter(str(exc), param_hint="--input") from exc
