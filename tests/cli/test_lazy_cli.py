"""`taskapi -h` and `--version` import no command module: the root group loads each command on first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from runtime.cli import main
from runtime.cli_lazy import LazyCommand, LazyGroup

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("wasmtime", "grpclib", "docker", "runtime.node", "environments", "runtime.appmanager")
"""What the node's commands bring in; none of it is needed to print the root's help or the version."""

PROBE = """
import json, sys
import runtime.cli
try:
    runtime.cli.main(sys.argv[1:], prog_name="taskapi")
except SystemExit:
    pass
loaded = [name for name in sys.modules if name.split(".")[0] in {heavy} or name in {heavy}]
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("args", [[], ["-h"], ["--version"]], ids=["import", "help", "version"])
def test_the_root_imports_none_of_the_node(args: list[str]) -> None:
    code = PROBE.format(heavy=repr(set(HEAVY)))
    if not args:
        code = code.replace('    runtime.cli.main(sys.argv[1:], prog_name="taskapi")', "    pass")
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    *shown, loaded = done.stdout.strip().splitlines()
    assert json.loads(loaded) == []
    if args == ["-h"]:
        assert "run " in "\n".join(shown) and "Run one task of APP end to end" in "\n".join(shown)
    if args == ["--version"]:
        assert shown[-1].startswith("taskapi, version ")


def test_every_command_is_lazy_and_listed() -> None:
    assert isinstance(main, LazyGroup)
    assert set(main.commands) <= set(main.lazy)
    assert main.list_commands(click.Context(main)) == sorted(main.lazy)


@pytest.mark.parametrize("name", sorted(main.lazy))
def test_each_summary_is_the_first_paragraph_of_its_commands_help(name: str) -> None:
    """The root's help shows the summary: it must say what the command's own help says."""
    command = main.get_command(click.Context(main), name)
    assert command is not None and command.help is not None
    assert main.lazy[name].summary == " ".join(command.help.partition("\n\n")[0].split())


def test_a_target_that_is_no_command_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match=r"runtime\.cli_help:EXAMPLES is not a click command but a dict"):
        LazyCommand("runtime.cli_help:EXAMPLES", "examples").load()
