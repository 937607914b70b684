"""Checks a command makes before it starts any work, each failing with one plain line.

`writable_output(path)` makes the output dir (and proves it can write there) before a task runs, so a bad
`--output` fails at once instead of after the task; `environment_ready(env_id)` asks the environment
whether this machine can run it (for docker: does an engine answer) and says how to fix it when not.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from environments.registry import UnknownEnvironment, environment_class, get_environment


@contextlib.contextmanager
def writable_output(path: Path, option: str = "--output") -> Iterator[Path]:
    """Make `path` (a dir) now, proving it is writable; `click.BadParameter` if not.

    Dirs made here are removed again, if still empty, when the block fails, so a failed run leaves no
    empty output dir behind.
    """
    missing = [parent for parent in (path, *path.parents) if not parent.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        _remove_empty(missing)
        reason = exc.strerror or str(exc)
        raise click.BadParameter(f"cannot write to {path}: {reason}", param_hint=f"'{option}'") from None
    try:
        yield path
    except BaseException:
        _remove_empty(missing)
        raise


def _remove_empty(dirs: list[Path]) -> None:
    for folder in dirs:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def environment_ready(env_id: str) -> None:
    """`click.ClickException` saying why this machine cannot run `env_id` and how to fix it, if it cannot."""
    try:
        get_environment(env_id)
    except UnknownEnvironment as exc:
        fix = ""
        with contextlib.suppress(UnknownEnvironment):  # installed, but not usable here: it says how to fix
            fix = environment_class(env_id).setup_hint
        raise click.ClickException(f"{exc}" + (f"; {fix}" if fix else "")) from None
