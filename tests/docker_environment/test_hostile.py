"""Hostile containers: each attack is held by the sandbox, and the runtime says what happened."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from environments.base import PrerequisitesRefused
from environments.docker import DockerCpuEnvironment, DockerLimits, DockerRun
from environments.status import RuntimeStatus

from .conftest import make_environment
from .support import python, run_sync

NETWORK_PROBE = """
import socket
for host, port in (("1.1.1.1", 53), ("151.101.0.223", 443), ("deb.debian.org", 80)):
    try:
        socket.create_connection((host, port), timeout=3)
        print("REACHED", host)
    except OSError as exc:
        print("blocked", host, type(exc).__name__)
import os
print("interfaces", sorted(os.listdir("/sys/class/net")))
"""

FORK_BOMB = """
import os, sys, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
except OSError as exc:
    print("fork refused after", children, "children:", exc.errno, flush=True)
    os._exit(0)
"""

MEMORY_BOMB = """
blocks = []
while True:
    blocks.append(bytearray(16 * 1024 * 1024))
"""

ESCAPE = """
import os
for path in ("/etc/passwd", "/usr/bin/evil", "/opt/taskapi-escape", "/golem/escape"):
    try:
        open(path, "a").write("x")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, exc.strerror)
open("/golem/work/allowed.txt", "w").write("fine")
open("/tmp/scratch", "w").write("fine")
status = open("/proc/self/status").read()
print("uid", os.getuid(), [line for line in status.splitlines() if line.startswith(("CapEff", "NoNewPrivs"))])
"""


def test_no_network_inside(docker_env: DockerCpuEnvironment, base_image: str) -> None:
    runtime, status, logs = run_sync(docker_env, python(base_image, NETWORK_PROBE))
    assert status is RuntimeStatus.STOPPED, runtime.failure_reason
    assert "REACHED" not in logs and logs.count("blocked") == 3
    assert "interfaces ['lo']" in logs


def test_a_fork_bomb_is_held_by_the_pids_limit(docker_env: DockerCpuEnvironment, base_image: str) -> None:
    limits = DockerLimits(pids=64, wall_time_s=120)
    runtime, status, logs = run_sync(docker_env, python(base_image, FORK_BOMB, limits=limits))
    assert status is RuntimeStatus.STOPPED, runtime.failure_reason
    assert "fork refused after" in logs and "errno" not in logs
    children = int(logs.split("fork refused after")[1].split()[0])
    assert 0 < children < 64
    assert "11" in logs.split("children:")[1]  # EAGAIN


def test_a_memory_bomb_is_killed_by_the_limit_with_a_clear_error(
    docker_env: DockerCpuEnvironment, base_image: str
) -> None:
    limits = DockerLimits(memory_bytes=64 * 1024 * 1024, wall_time_s=120)
    runtime, status, _ = run_sync(docker_env, python(base_image, MEMORY_BOMB, limits=limits))
    assert status is RuntimeStatus.FAILURE and runtime.oom_killed
    assert runtime.failure_reason is not None
    assert "killed by the memory limit of 64 MiB" in runtime.failure_reason
    assert runtime.usage().peak_memory_bytes <= 64 * 1024 * 1024


def test_writing_outside_the_work_dir_fails_and_nothing_is_privileged(
    docker_env: DockerCpuEnvironment, base_image: str, tmp_path: Path
) -> None:
    runtime, status, logs = run_sync(docker_env, python(base_image, ESCAPE, work_dir=tmp_path))
    assert status is RuntimeStatus.STOPPED, runtime.failure_reason
    assert "WROTE" not in logs and logs.count("refused") == 4
    assert "Read-only file system" in logs
    assert (tmp_path / "allowed.txt").read_text() == "fine"
    assert "uid 10001" in logs or "uid 0" not in logs
    assert "CapEff:\\t0000000000000000" in logs and "NoNewPrivs:\\t1" in logs


def test_a_container_that_never_exits_is_stopped_at_its_deadline(
    docker_env: DockerCpuEnvironment, base_image: str
) -> None:
    run = DockerRun(image=base_image, command=("sleep", "infinity"), limits=DockerLimits(wall_time_s=2))
    runtime, status, _ = run_sync(docker_env, run)
    assert status is RuntimeStatus.FAILURE and runtime.deadline_passed
    assert runtime.failure_reason == "deadline of 2 s passed: the container was stopped"


def test_an_image_off_the_whitelist_is_refused(base_image: str) -> None:
    env = make_environment(repositories=frozenset({"taskapi/tutorialapp"}))
    try:
        runtime = env.runtime(DockerRun(image=base_image, command=("true",)))
        with pytest.raises(
            PrerequisitesRefused, match=f"image {base_image} is not whitelisted in docker_cpu"
        ):
            asyncio.run(runtime.prepare())
        assert runtime.status() is RuntimeStatus.FAILURE and runtime.container is None
        asyncio.run(runtime.clean_up())
    finally:
        asyncio.run(env.clean_up())
