"""`taskapi run` end to end: a real app server over real gRPC, driven by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from apps.tutorialapp import pow
from runtime.cli import main
from runtime.cli_settings import parse_settings


def smallest_nonce(text: str, difficulty: int) -> int:
    nonce = pow.search(text, difficulty, 0, 2 ** (difficulty + 4))
    assert nonce is not None
    return nonce


def test_run_tutorialapp_writes_the_smallest_nonce(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "run",
            "tutorialapp",
            "--env",
            "local",
            "--set",
            "input=hello",
            "--set",
            "difficulty=12",
            "--set",
            "subtasks=5",
            "--output",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    expected = smallest_nonce("hello", 12)
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written == {"nonce": expected, "hash": pow.digest("hello", expected).hex()}
    assert summary["env"] == "local" and summary["subtasks"]["accepted"] >= 1


def test_run_rejects_bad_parameters_naming_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "run",
            "tutorialapp",
            "--env",
            "local",
            "--set",
            "input=x",
            "--set",
            "difficulty=high",
            "--set",
            "subtasks=2",
            "--output",
            str(tmp_path),
        ],
    )
    assert result.exit_code != 0
    assert "difficulty" in result.output and "INVALID" not in result.output


def test_run_unknown_app_lists_known_ones() -> None:
    result = CliRunner().invoke(main, ["run", "no-such-app"])
    assert result.exit_code == 2
    assert "unknown app 'no-such-app'" in result.output and "tutorialapp" in result.output


def test_parse_settings_reads_json_values_and_falls_back_to_strings() -> None:
    assert parse_settings(("a=16", "b=hello", "c=[1, 2]", "d=")) == {
        "a": 16,
        "b": "hello",
        "c": [1, 2],
        "d": "",
    }
