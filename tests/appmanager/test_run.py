"""`taskapi run` finds its apps through the app manager: shipped builds, added builds, the wasm build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from apps.tutorialapp import pow
from runtime.appmanager.manager import REPO_ROOT
from runtime.cli import main

from .descriptors import WriteDescriptor

WASM_ADAPTER = REPO_ROOT / "environments" / "wasm" / "__main__.py"


def run_pow(data_dir: Path, output: Path, app: str, env: str) -> Result:
    args = ["run", app, "--env", env, "--output", str(output), "--json", "--providers", "2"]
    args += ["--set", "input=hello", "--set", "difficulty=10", "--set", "subtasks=4"]
    return CliRunner().invoke(main, args, env={"TASKAPI_DATA_DIR": str(data_dir)})


def assert_smallest_nonce(result: Result, output: Path, env: str) -> None:
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["env"] == env
    nonce = pow.search("hello", 10, 0, 2**14)
    assert nonce is not None
    expected = {"nonce": nonce, "hash": pow.digest("hello", nonce).hex()}
    assert json.loads((output / "result.json").read_text()) == expected


def test_run_shipped_tutorialapp_local_build(data_dir: Path, tmp_path: Path) -> None:
    result = run_pow(data_dir, tmp_path / "out", "tutorialapp", "local")
    assert_smallest_nonce(result, tmp_path / "out", "local")


def test_run_an_added_and_enabled_app(
    data_dir: Path, tmp_path: Path, write_descriptor: WriteDescriptor
) -> None:
    descriptor = {
        "name": "powdemo",
        "version": "0.0.1",
        "environment": "local",
        "prerequisites": {"module": "apps.tutorialapp"},
    }
    runner = CliRunner(env={"TASKAPI_DATA_DIR": str(data_dir)})
    added = runner.invoke(main, ["apps", "add", str(write_descriptor(descriptor, module=None))])
    assert added.exit_code == 0, added.output
    refused = run_pow(data_dir, tmp_path / "out", "powdemo", "local")
    assert refused.exit_code == 2 and "app 'powdemo' is disabled" in refused.output
    assert runner.invoke(main, ["apps", "enable", "powdemo"]).exit_code == 0
    assert_smallest_nonce(run_pow(data_dir, tmp_path / "out", "powdemo", "local"), tmp_path / "out", "local")


def test_run_tutorialapp_wasm_build(data_dir: Path, tmp_path: Path) -> None:
    if not WASM_ADAPTER.is_file():
        reason = f"the wasm adapter {WASM_ADAPTER} is not there yet"
        print(reason)
        pytest.skip(reason)
    result = run_pow(data_dir, tmp_path / "out", "tutorialapp", "wasm")
    assert_smallest_nonce(result, tmp_path / "out", "wasm")
