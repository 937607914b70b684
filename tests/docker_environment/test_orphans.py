"""Containers outlive a node killed with SIGKILL; the next node to prepare docker_cpu removes them, and only
them: a live process's containers, and owners it cannot check, are left alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from environments.docker import DockerCpuEnvironment, DockerRun
from environments.docker.owner import OWNER_LABEL, is_gone, owner_of

from .conftest import make_environment

REPO = Path(__file__).resolve().parents[2]

NODE = """
import asyncio, sys, time
from environments.docker import DockerRun
from tests.docker_environment.conftest import make_environment

async def start(env):
    runtime = env.runtime(DockerRun(image=sys.argv[1], entrypoint=("sleep", "600")))
    await runtime.prepare()
    await runtime.start()
    print(runtime.container.id, flush=True)

asyncio.run(start(make_environment()))
time.sleep(600)
"""


def test_the_owner_of_a_live_process_is_not_gone_and_of_a_dead_one_is() -> None:
    assert not is_gone(owner_of(os.getpid()))
    child = subprocess.Popen(["sleep", "600"])
    owner = owner_of(child.pid)
    assert not is_gone(owner)
    child.kill()
    child.wait()
    assert is_gone(owner)
    boot, namespace, pid, started = owner.split("/")
    assert not is_gone(f"another-boot/{namespace}/{pid}/{started}")  # cannot be checked from here
    assert not is_gone(f"{boot}/pid:[1]/{pid}/{started}")
    assert not is_gone("")  # a container made by something else


def _node_container(base_image: str) -> tuple[subprocess.Popen[str], str]:
    node = subprocess.Popen(
        [sys.executable, "-c", NODE, base_image], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert node.stdout is not None
    return node, node.stdout.readline().strip()


def test_a_killed_nodes_container_is_removed_by_the_next_node(
    docker_env: DockerCpuEnvironment, base_image: str
) -> None:
    client = docker.from_env()
    node, orphan = _node_container(base_image)
    assert orphan, "the node process printed no container id"
    os.kill(node.pid, signal.SIGKILL)
    node.wait()
    assert client.containers.get(orphan).status == "running"  # SIGKILL left it behind

    runtime = docker_env.runtime(DockerRun(image=base_image, entrypoint=("sleep", "600")))
    asyncio.run(runtime.prepare())
    mine = runtime.container.id
    assert client.containers.get(mine).labels[OWNER_LABEL] == owner_of(os.getpid())
    next_node = make_environment()
    try:
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(orphan)
        assert client.containers.get(mine).id == mine  # this process is alive: its container stays
    finally:
        asyncio.run(runtime.clean_up())
        asyncio.run(next_node.clean_up())
