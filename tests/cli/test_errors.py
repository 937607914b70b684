"""Ordinary mistakes are found before any work starts and said in plain words, never as a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from apps.tutorialapp import pow
from runtime.cli import main

ENDLESS = ["--set", "input=x", "--set", "difficulty=40", "--set", "subtasks=1"]
"""A task that would run for days: a check made after the work would never be reached."""


def taskapi(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args), prog_name="taskapi")


def plain(result: Result) -> str:
    """The output, checked to hold no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("output", ["/proc/taskapi-out", "/dev/null/out"], ids=["proc", "under-a-file"])
def test_an_unwritable_output_dir_fails_at_once(output: str) -> None:
    began = time.monotonic()
    result = taskapi("run", "tutorialapp", *ENDLESS, "--output", output)
    assert result.exit_code == 2
    error = [line for line in plain(result).splitlines() if line.startswith("Error:")]
    assert error == [error[0]] and "'--output'" in error[0] and output in error[0]
    assert time.monotonic() - began < 30  # the endless task never started


def test_every_parameter_problem_is_named_at_once() -> None:
    result = taskapi(
        "run", "tutorialapp", "--set", "difficulty=high", "--set", "colour=red", "--output", "out"
    )
    assert result.exit_code == 2
    text = plain(result)
    assert "difficulty: must be integer" in text and "--set difficulty=16" in text
    assert "colour: unknown parameter" in text
    assert "input: required (string)" in text and "subtasks:" not in text  # it has a default


@pytest.mark.parametrize("given", ["input=123", 'input="123"'], ids=["bare", "json-string"])
def test_a_string_parameter_takes_digits_as_typed(given: str, tmp_path: Path) -> None:
    args = ["--env", "local", "--set", given, "--set", "difficulty=8", "--set", "subtasks=2"]
    result = taskapi("run", "tutorialapp", *args, "--output", str(tmp_path), "--json")
    assert result.exit_code == 0, plain(result)
    nonce = pow.search("123", 8, 0, 2**12)
    assert nonce is not None
    assert json.loads((tmp_path / "result.json").read_text())["nonce"] == nonce


@pytest.mark.parametrize("env_id", ["docker_cpu"])
def test_a_docker_env_without_an_engine_says_how_to_start_one(env_id: str, tmp_path: Path) -> None:
    no_engine = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    result = taskapi("run", "tutorialapp", "--env", env_id, *ENDLESS, "--output", "out", env=no_engine)
    assert result.exit_code == 1
    text = plain(result)
    assert f"environment {env_id!r} is not usable here" in text and "scripts/setup_docker" in text
    assert "refused the task" not in text


def test_provider_join_on_docker_without_an_engine_fails_before_dialling(tmp_path: Path) -> None:
    no_engine = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    args = ["provider", "join", "127.0.0.1:9", "--token", "t", "--env", "docker_cpu"]
    result = taskapi(*args, "--data-dir", str(tmp_path / "p"), env=no_engine)
    assert result.exit_code == 1
    text = plain(result)
    assert "environment 'docker_cpu' is not usable here" in text and "scripts/setup_docker" in text
    assert "joining" not in text


def test_an_unknown_app_names_the_known_ones() -> None:
    result = taskapi("run", "no-such-app")
    assert result.exit_code == 2
    assert "unknown app 'no-such-app'" in plain(result) and "tutorialapp" in result.output
