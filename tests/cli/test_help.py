"""Help by click's conventions: `-h`, bare `taskapi`, every option described, examples, 80 columns."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from environments.registry import environment_ids
from runtime.cli import main
from runtime.cli_help import EXAMPLES, commands

COMMANDS = sorted(commands(main))


def test_bare_taskapi_prints_help_and_exits_0() -> None:
    result = CliRunner().invoke(main, [], prog_name="taskapi")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: taskapi") and "run " in result.output and "envs " in result.output


@pytest.mark.parametrize("path", COMMANDS)
def test_every_command_answers_h_with_described_options_and_an_example(path: str) -> None:
    result = CliRunner().invoke(main, [*path.split(), "-h"], prog_name="taskapi", terminal_width=80)
    assert result.exit_code == 0, result.output
    assert f"Usage: taskapi {path}" in result.output
    assert "Example" in result.output and EXAMPLES[path][0] in result.output
    command = commands(main)[path]
    undescribed = [p.name for p in command.params if isinstance(p, click.Option) and not p.help]
    assert undescribed == []


def test_every_env_option_is_a_choice_of_the_registry() -> None:
    env_options = [
        (path, option)
        for path, command in commands(main).items()
        for option in command.params
        if isinstance(option, click.Option) and "--env" in option.opts
    ]
    assert {path for path, _ in env_options} >= {"run", "provider join", "task submit", "conformance"}
    for path, option in env_options:
        assert isinstance(option.type, click.Choice), path
        assert list(option.type.choices) == environment_ids(), path


def test_run_and_provider_join_take_the_same_capacity_option() -> None:
    def capacity(path: str) -> dict[str, object]:
        (option,) = [p for p in commands(main)[path].params if p.name == "capacity"]
        assert isinstance(option, click.Option)
        return {
            "opts": option.opts,
            "type": repr(option.type),
            "default": option.default,
            "help": option.help,
        }

    run = capacity("run")
    assert run == capacity("provider join")
    assert run["default"] == 1 and run["type"] == repr(click.IntRange(min=1)), run


def test_env_choices_come_from_the_registry() -> None:
    result = CliRunner().invoke(main, ["run", "tutorialapp", "--env", "nosuch"])
    assert result.exit_code == 2
    assert "Invalid value for '--env'" in result.output
    assert all(env in result.output for env in ("wasm", "docker_cpu", "docker_gpu", "local"))


@pytest.mark.parametrize("args", [["apps", "list"], ["envs", "list"]], ids=["apps-list", "envs-list"])
def test_tables_fit_80_columns(args: list[str]) -> None:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, result.output
    assert "…" not in result.output  # nothing cut short
    if args[0] == "apps":
        assert any("tutorialapp 0.1.0" in line and "wasm" in line for line in lines)
