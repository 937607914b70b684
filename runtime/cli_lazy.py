"""A click group whose subcommands are imported the first time one is used (click's LazyGroup pattern).

`taskapi -h` and `taskapi --version` then import none of the node (wasmtime, grpclib, docker, ...): the
group lists its commands from one-line summaries kept beside their import paths, and imports a command only
when it is run or its own help is asked for. `tests/cli/test_help.py` checks each summary against its
command's own help, so the two cannot drift.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from runtime.cli_help import add_examples


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (`module:attribute`) and the first paragraph of its help."""

    target: str
    summary: str

    def load(self) -> click.Command:
        """Import the command; TypeError when the target is not a click command."""
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command but a {type(command).__name__}")
        return command


class LazyGroup(click.Group):
    """A group of `lazy` commands, each imported (and given its examples) on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            command = self.lazy[cmd_name].load()
            add_examples(command, cmd_name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their short help, as click shows them, without importing any."""
        shown = {
            name: self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            for name in self.list_commands(ctx)
        }
        rows = [(name, command) for name, command in shown.items() if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])
