"""The options of the commands that compute subtasks on this machine, `taskapi run` and `taskapi provider
join`: which environment(s) to compute in (`--env`) and how many subtasks at once (`--capacity`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from environments.registry import by_preference, environment_ids

F = TypeVar("F", bound=Callable[..., Any])

ENVS_LIST_HINT = "`taskapi envs list` says which this machine supports"


def compute_options(*, offering: bool) -> Callable[[F], F]:
    """`--env` and `--capacity`.

    `offering` (a provider offering its environments to a requestor): `--env` is repeatable and defaults to
    the installed environment first by preference, passed as `envs`. Otherwise (one task run here) it names
    the one environment of the app's build to run, default the app's wasm build where it has one, passed
    as `env`.
    """
    if offering:
        env_option = click.option(
            "--env",
            "envs",
            multiple=True,
            default=(by_preference(environment_ids())[0],),
            show_default=True,
            type=click.Choice(environment_ids()),
            help=f"Environment to offer (repeatable; {ENVS_LIST_HINT}). The default is the installed "
            "environment first by preference: sandboxed, deterministic, metered.",
        )
    else:
        env_option = click.option(
            "--env",
            "env",
            type=click.Choice(environment_ids()),
            default=None,
            help="Environment to compute in (default: wasm where the app has a wasm build; "
            f"{ENVS_LIST_HINT}).",
        )
    capacity_option = click.option(
        "--capacity",
        default=1,
        show_default=True,
        type=click.IntRange(min=1),
        help="Subtasks a provider computes at once.",
    )

    def decorate(command: F) -> F:
        return env_option(capacity_option(command))

    return decorate
