"""An example for every `taskapi` command, shown at the end of its `--help` (click's epilog).

Kept in one table so the examples read as one tutorial and a test can check that no command lacks one.
"""

from __future__ import annotations

import click

EXAMPLES: dict[str, tuple[str, ...]] = {
    "run": (
        "taskapi run tutorialapp --set input=hello --set difficulty=16 \\",
        "    --set subtasks=8 --output out",
        "taskapi run mandelbrot --set width=640 --set height=480 --set parts=8",
        "taskapi run tutorialapp --env docker_cpu --set input=hi \\",
        "    --set difficulty=12 --set subtasks=4 --json",
        "taskapi apps show tutorialapp    (an app's parameters)",
    ),
    "requestor serve": (
        "taskapi requestor serve --listen 0.0.0.0:7420 --data-dir node",
        "    (prints the `provider join` line providers run)",
    ),
    "provider join": (
        'taskapi provider join HOST:7420 --token "$(cat node/provider-token)" \\',
        "    --env wasm --capacity 2",
    ),
    "task submit": (
        "taskapi task submit tutorialapp --set input=hello --set difficulty=16 \\",
        "    --set subtasks=8 --wait --data-dir node",
    ),
    "task status": ("taskapi task status TASK_ID --data-dir node --json",),
    "task abort": ("taskapi task abort TASK_ID --data-dir node",),
    "apps list": ("taskapi apps list --json",),
    "apps show": ("taskapi apps show tutorialapp --env wasm",),
    "apps add": ("taskapi apps add path/to/myapp/descriptor.json --enable",),
    "apps enable": ("taskapi apps enable myapp --env docker_cpu",),
    "apps disable": ("taskapi apps disable 0fabdb5f1803",),
    "replay": ("taskapi replay SUBTASK_ID --data-dir node",),
    "conformance": (
        "taskapi conformance tutorialapp --examples 50 --report report.json",
        "    (then `provider join --require-conformance report.json`)",
    ),
    "envs list": ("taskapi envs list --benchmark",),
}


def commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command under `group` that is not itself a group, by its path ("task submit"); the commands
    of a lazy group are imported."""
    found: dict[str, click.Command] = {}
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None:
            raise LookupError(f"command {prefix}{name} is listed but cannot be loaded")
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.update(commands(command, f"{path} "))
        else:
            found[path] = command
    return found


def add_examples(command: click.Command, path: str = "") -> None:
    """Give `command` (at `path`, e.g. "task"; "" for the root) and each command under it without an epilog
    its example from `EXAMPLES`."""
    if isinstance(command, click.Group):
        found = commands(command, f"{path} " if path else "")
    else:
        found = {path: command}
    for where, each in found.items():
        if not each.epilog and where in EXAMPLES:
            lines = EXAMPLES[where]
            title = "Examples" if sum(not line.startswith(" ") for line in lines) > 1 else "Example"
            each.epilog = f"\b\n{title}:\n" + "\n".join(f"  {line}" for line in lines)
