"""The runtime lifecycle state machine on docker_cpu, and what a docker runtime reports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from environments.base import PrerequisitesRefused, Runtime
from environments.docker import DockerCpuEnvironment, DockerPrerequisites, DockerRun
from environments.status import RuntimeStatus
from tests.environments.lifecycle_machine import PayloadKind, RuntimeLifecycleMachine

from .conftest import make_environment, require_engine_and_images
from .support import python, run_sync

_machine: dict[str, tuple[DockerCpuEnvironment, dict[PayloadKind, DockerRun]]] = {}


@pytest.fixture(scope="module", autouse=True)
def machine_environment() -> Iterator[None]:
    """One environment and one run per payload kind for every example of the machine."""
    require_engine_and_images("base")
    from environments.docker.images import full_name

    image = full_name("base")
    env = make_environment()
    _machine["env"] = (
        env,
        {
            PayloadKind.ENDLESS: DockerRun(image=image, command=("sleep", "infinity")),
            PayloadKind.FINITE: DockerRun(image=image, command=("true",)),
            PayloadKind.FAILING: DockerRun(image=image, command=("false",)),
            PayloadKind.BROKEN: DockerRun(image="taskapi/base:no-such-tag", command=("true",)),
        },
    )
    yield
    asyncio.run(env.clean_up())


class DockerLifecycle(RuntimeLifecycleMachine):
    def new_runtime(self, kind: PayloadKind) -> Runtime:
        env, runs = _machine["env"]
        return env.runtime(runs[kind])

    def teardown(self) -> None:
        runtime = self.runtime
        super().teardown()
        if runtime is not None and runtime.status() in (
            RuntimeStatus.PREPARED,
            RuntimeStatus.STOPPED,
            RuntimeStatus.FAILURE,
        ):
            asyncio.run(runtime.clean_up())  # leave no container behind


TestDockerLifecycle = DockerLifecycle.TestCase
TestDockerLifecycle.settings = settings(max_examples=12, stateful_step_count=6, deadline=None)


def test_a_finished_container_reports_usage_and_its_output(
    docker_env: DockerCpuEnvironment, base_image: str, tmp_path: Path
) -> None:
    # Busy for two seconds: the engine streams stats about once a second, so the run is sampled.
    code = (
        "import time; open('/golem/work/out.txt', 'w').write('x' * 10); end = time.monotonic() + 2\n"
        "while time.monotonic() < end: sum(range(10_000))\n"
        "print(sum(range(3_000_000)))"
    )
    runtime, status, logs = run_sync(docker_env, python(base_image, code, work_dir=tmp_path))
    assert status is RuntimeStatus.STOPPED and runtime.exit_code == 0
    assert logs.strip() == str(sum(range(3_000_000)))
    assert (tmp_path / "out.txt").read_text() == "x" * 10
    usage = runtime.usage()
    assert usage.wall_ms >= 2000 and usage.cpu_ns > 0 and usage.peak_memory_bytes > 0 and usage.fuel is None


def test_a_failing_container_fails_with_its_exit_code_and_log(
    docker_env: DockerCpuEnvironment, base_image: str
) -> None:
    runtime, status, _ = run_sync(
        docker_env, python(base_image, "import sys; print('bad input'); sys.exit(3)")
    )
    assert status is RuntimeStatus.FAILURE
    assert runtime.failure_reason is not None
    assert "exited with code 3" in runtime.failure_reason and "bad input" in runtime.failure_reason


def test_prerequisites_are_checked_against_the_whitelist_and_the_engine(
    docker_env: DockerCpuEnvironment, tutorial_image: str
) -> None:
    repository, _, tag = tutorial_image.partition(":")
    asyncio.run(docker_env.install_prerequisites(DockerPrerequisites(image=repository, tag=tag)))
    image_id = asyncio.run(docker_env.image_id(tutorial_image))
    asyncio.run(
        docker_env.install_prerequisites(DockerPrerequisites(image=repository, tag=tag, digest=image_id))
    )
    with pytest.raises(PrerequisitesRefused, match="not the required sha256:0000"):
        asyncio.run(
            docker_env.install_prerequisites(
                DockerPrerequisites(image=repository, tag=tag, digest="sha256:" + "0" * 64)
            )
        )
    with pytest.raises(PrerequisitesRefused, match="not on this machine and no registry is reachable"):
        asyncio.run(
            docker_env.install_prerequisites(DockerPrerequisites(image=repository, tag="no-such-tag"))
        )


def test_the_benchmark_scores_the_machine(docker_env: DockerCpuEnvironment) -> None:
    require_engine_and_images("tutorialapp")
    result = asyncio.run(docker_env.benchmark())
    assert result.score > 0 and result.usage.cpu_ns > 0
