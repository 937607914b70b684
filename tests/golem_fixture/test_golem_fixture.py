"""A Golem-style app, unchanged, end to end through `taskapi run` on `local` and on `docker_cpu`.

The app (app/golemfixture) runs on its own stack (Python 3.7, grpclib 0.2.4, protobuf 3.20): it answers
errors trailers-only without content-type, ends its provider server after one Compute, keeps its work dir
at /golem/work, listens on all interfaces and relies on the node for its task dir's folders and files.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.sdk.workdir import ProviderTaskDir
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.runners import runners_for

from . import build

TASKAPI = str(Path(sys.executable).with_name("taskapi"))
ENVS = ["local", "docker_cpu"]


def taskapi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TASKAPI, *args], capture_output=True, text=True, timeout=240, cwd=cwd)


def descriptor(env: str, python: Path) -> dict[str, object]:
    common = {"name": "golemfixture", "version": "0.24.0", "resources": {"min_memory_mib": 64}}
    if env == "local":
        command = [str(python), "-m", "golemfixture"]
        prerequisites = {"module": "golemfixture", "command": command, "work_dir": "/golem/work"}
        return {**common, "environment": "local", "prerequisites": prerequisites}
    return {
        **common,
        "environment": "docker_cpu",
        "prerequisites": {"image": build.IMAGE, "tag": build.IMAGE_TAG},
    }


@pytest.fixture(params=ENVS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The fixture app added and enabled for one environment (skipped where that cannot be served)."""
    python = build.venv_python()
    if python is None:
        pytest.skip(f"the fixture's Python 3.7 stack is not built: run {build.SETUP_COMMAND}")
    name: str = request.param
    if name == "local" and os.geteuid() != 0:
        pytest.skip("local needs root to bind the work dir at /golem/work")
    if name == "docker_cpu" and (shutil.which("docker") is None or build.image() is None):
        pytest.skip(f"no docker engine, or the fixture image is not built: run {build.SETUP_COMMAND}")
    path = tmp_path / f"descriptor-{name}.json"
    path.write_text(json.dumps(descriptor(name, python)))
    added = taskapi("apps", "add", str(path), "--enable", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    yield name


def numbers_folder(tmp_path: Path, count: int) -> tuple[Path, int]:
    """A folder `data/` with `numbers.txt`; the sum of their squares."""
    numbers = [random.Random(count).randrange(-1000, 1000) for _ in range(count)]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "numbers.txt").write_text(" ".join(map(str, numbers)))
    return folder, sum(n * n for n in numbers)


def test_a_task_with_an_input_folder_completes_with_the_right_result(env: str, tmp_path: Path) -> None:
    folder, expected = numbers_folder(tmp_path, 500)
    run = taskapi(
        "run", "golemfixture", "--env", env, "--input", str(folder),
        "--set", "numbers_file=data/numbers.txt", "--set", "parts=3", "--output", "out", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["subtasks"]["accepted"] == 3
    assert (tmp_path / "out" / "result.txt").read_text() == str(expected)


def test_an_app_error_arrives_with_its_own_status_and_message(env: str, tmp_path: Path) -> None:
    run = taskapi(
        "run", "golemfixture", "--env", env, "--set", "numbers=[1]", "--set", "parts=-1", cwd=tmp_path
    )
    assert run.returncode == 1
    assert "refused the task: parts=-1" in run.stderr
    assert "content-type" not in run.stderr


def test_a_failing_next_subtask_fails_the_task_with_the_apps_message(env: str, tmp_path: Path) -> None:
    run = taskapi(
        "run", "golemfixture", "--env", env, "--set", "numbers=[1, 2]", "--set", "fail_next_subtask=true",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1
    assert "failed 5 NextSubtask calls in a row" in run.stderr
    assert "INTERNAL no subtask for node" in run.stderr and "told to fail" in run.stderr


def test_parameters_too_large_for_argv_come_from_a_file(env: str, tmp_path: Path) -> None:
    numbers = list(range(-100_000, 100_000))
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"numbers": numbers, "parts": 2}))
    assert params.stat().st_size > 1_000_000
    run = taskapi(
        "run", "golemfixture", "--env", env, "--params", str(params), "--output", "out", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "result.txt").read_text() == str(sum(n * n for n in numbers))


def test_each_compute_gets_a_fresh_provider_server(env: str, tmp_path: Path) -> None:
    """Golem's provider servers exit after one Compute: a second subtask of the same task on the same
    provider must get a server of its own (a reused one would be gone: UNAVAILABLE)."""
    app = AppManager().resolve("golemfixture", env)
    assert app.descriptor.provider_server == "per_call"
    task_dir = ProviderTaskDir(tmp_path / "work" / "t1")
    task_dir.prepare()
    prerequisites = json.dumps({"image": build.IMAGE, "tag": build.IMAGE_TAG})

    async def compute_two() -> list[str]:
        [runner] = runners_for([env], [app])
        results = []
        try:
            for subtask_id, numbers in (("s1", "1 2"), ("s2", "3")):
                (task_dir.subtask_inputs / f"{subtask_id}.txt").write_text(numbers)
                assignment = npb.Assignment(
                    task_id="t1",
                    subtask_id=subtask_id,
                    app_name="golemfixture",
                    env_id=env,
                    prerequisites_json=prerequisites,
                    subtask_params_json='{"part": 0}',
                )
                outcome = await runner.compute(assignment, task_dir, None)
                results.append(outcome.output.read_text())
        finally:
            await runner.close()
        return results

    assert asyncio.run(compute_two()) == ["5", "9"]
