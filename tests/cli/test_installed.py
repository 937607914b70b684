"""The installed command: a wheel of this tree, installed into a fresh venv, runs the README's main job.

The wheel is built from a copy of the working tree (so the test sees what a clean clone packages, and
leaves no build/ behind), installed with only its declared dependencies (no dev extras), and run from a
folder outside the repository, so nothing can be imported from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from apps.tutorialapp import pow

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_PACKAGED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "tests", "bench"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin/` folder of a fresh venv with the wheel of this tree installed (no extras)."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_PACKAGED)
    wheels = work / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            wheels,
            source,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("taskapi-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "-q", wheel], check=True, capture_output=True
    )
    return env_dir / "bin"


def _outside_env(cwd: Path) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH into the checkout, a data dir of its own."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TASKAPI_DATA_DIR"] = str(cwd / "data")
    return env


def test_installed_wheel_runs_the_main_job_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            installed / "taskapi",
            "run",
            "tutorialapp",
            "--set",
            "input=hello",
            "--set",
            "difficulty=8",
            "--set",
            "subtasks=4",
            "--output",
            "OUT",
            "--json",
        ],
        cwd=tmp_path,
        env=_outside_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["env"] == "wasm"
    nonce = pow.search("hello", 8, 0, 2**12)
    assert nonce is not None
    written = json.loads((tmp_path / "OUT" / "result.json").read_text())
    assert written == {"nonce": nonce, "hash": pow.digest("hello", nonce).hex()}


def test_installed_wheel_imports_nothing_from_the_checkout(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import runtime, wasm_apps; from environments.docker.images import RECIPES;"
        "missing = [r.name for r in RECIPES.values() if not r.dockerfile.is_file()];"
        "print(runtime.__file__, wasm_apps.APPS_DIR, 'missing images:', missing)"
    )
    result = subprocess.run(
        [installed / "python", "-c", probe],
        cwd=tmp_path,
        env=_outside_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(REPO_ROOT) not in result.stdout
    assert str(installed.parent) in result.stdout
    assert result.stdout.strip().endswith("missing images: []")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["conformance", "--help"], ["apps", "list", "--json"]],
    ids=["help", "conformance-help", "apps-list"],
)
def test_installed_command_answers_every_group(installed: Path, tmp_path: Path, args: list[str]) -> None:
    result = subprocess.run(
        [installed / "taskapi", *args],
        cwd=tmp_path,
        env=_outside_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    if args[:2] == ["apps", "list"]:
        found = {(app["name"], app["environment"]) for app in json.loads(result.stdout)["apps"]}
        assert {("tutorialapp", "wasm"), ("mandelbrot", "wasm"), ("tutorialapp", "docker_cpu")} <= found


def test_readme_command_sets_up_only_what_running_needs(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(REPO_ROOT, clone, ignore=NOT_PACKAGED)
    env = _outside_env(tmp_path)
    first = subprocess.run(
        [clone / "scripts" / "taskapi", "--version"], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        f"setting up taskapi in {clone}/.venv (first use or pyproject.toml changed; about a minute)"
    ]
    installed = {path.name.lower() for path in (clone / ".venv").glob("lib/python*/site-packages/*")}
    assert any(name.startswith("hypothesis") for name in installed)
    assert not {"ruff", "mypy", "pytest", "grpc_tools"} & installed
    again = subprocess.run(
        [clone / "scripts" / "taskapi", "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and again.stderr == ""
