"""A container wait whose Docker engine stops answering (environments/docker/runtime.py `_wait_exit`).

The engine here is the real docker SDK client pointed at a socket where no engine listens, so every call
fails as it does when the engine dies: a connection error at once. The wait must back off between tries
(not spin) and give up with EngineUnavailable once the engine stayed silent for ENGINE_LOST_S.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest

from environments.docker import runtime as docker_runtime
from environments.docker.engine import Engine, EngineUnavailable
from environments.docker.runtime import DockerRuntime
from environments.docker.spec import DockerLimits, DockerRun

LOST_S = 1.5


class SilentEngine(Engine):
    """An engine client whose socket nobody listens on (the API version pinned: nothing is asked first)."""

    def __init__(self, socket: Path) -> None:
        self.client = docker.DockerClient(base_url=f"unix://{socket}", version="1.41")
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "silent-engine")


def test_a_wait_on_a_silent_engine_backs_off_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_runtime, "ENGINE_LOST_S", LOST_S)
    engine = SilentEngine(tmp_path / "docker.sock")
    environment: Any = SimpleNamespace(env_id="docker_cpu", engine=engine)
    runtime = DockerRuntime(environment, DockerRun(image="taskapi/base"), DockerLimits())
    container = engine.client.containers.prepare_model({"Id": "f" * 64})
    tries = []
    real_wait = container.wait

    def counted_wait(**options: object) -> object:
        tries.append(time.monotonic())
        return real_wait(**options)

    container.wait = counted_wait
    runtime.container = container
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="stopped answering while container ffffffffff"):
        asyncio.run(runtime._wait_exit())
    took = time.monotonic() - started
    assert LOST_S <= took < LOST_S + 10, took
    assert 2 <= len(tries) <= 10, f"{len(tries)} tries in {took:.1f} s: the wait spun"
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert min(gaps) >= 0.2, gaps
    engine.client.close()
