"""The `taskapi` command line: the root group. Each command lives in a module of its own (`run` in
`runtime/cli_run.py`, the node's in `cli_node.py`, ...), imported only when that command is used, so
`taskapi -h` and `taskapi --version` start without importing the node (`runtime/cli_lazy.py`)."""

from __future__ import annotations

import click

from runtime.cli_lazy import LazyCommand, LazyGroup

MAIN_EXAMPLES = """\b
Start here:
  taskapi run tutorialapp --set input=hello --set difficulty=16 \\
      --set subtasks=8 --output out
  taskapi apps list          the apps, and their ids
  taskapi envs list          what this machine can compute in
  taskapi requestor serve    then `provider join` elsewhere (it prints the line)
"""

COMMANDS = {
    "run": LazyCommand(
        "runtime.cli_run:run",
        "Run one task of APP end to end: a requestor and local providers in this process, over gRPC.",
    ),
    "requestor": LazyCommand("runtime.cli_node:requestor", "Run a requestor node."),
    "provider": LazyCommand("runtime.cli_node:provider", "Run a provider node."),
    "task": LazyCommand("runtime.cli_node:task", "Submit, inspect and abort tasks on a running requestor."),
    "apps": LazyCommand(
        "runtime.cli_apps:apps",
        "Manage app builds: shipped ones are enabled, added ones must be enabled before use.",
    ),
    "replay": LazyCommand(
        "runtime.cli_replay:replay_command",
        "Re-run SUBTASK_ID (a wasm subtask) bit-exactly; exit 0 if output and fuel equal the claim, else 1.",
    ),
    "conformance": LazyCommand(
        "runtime.cli_conformance:conformance",
        "Check APP against the task-api protocol and the properties every app must have, through gRPC only.",
    ),
    "envs": LazyCommand(
        "runtime.cli_envs:envs", "The compute environments this node knows, and what this machine can run."
    ),
}
"""Every command, where it lives, and the first paragraph of its help (what `taskapi -h` shows)."""


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    invoke_without_command=True,
    epilog=MAIN_EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="taskapi")
@click.pass_context
def main(ctx: click.Context) -> None:
    """taskapi: a sandboxed, WASM-first compute runtime speaking Golem's task-api."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
