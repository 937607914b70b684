"""Where an app server listens when no `--host` is given: loopback on a host, all interfaces where
TASKAPI_APP_HOST says so (our app images set it, for Golem's `IMAGE requestor PORT`: see
tests/docker_environment/test_golem_start.py); an explicit `--host` always wins."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from apps.sdk.client import RequestorAppClient, wait_until_serving
from apps.sdk.process import free_port, python_app_command
from apps.sdk.server import HOST_VARIABLE

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("variable", "arguments", "listening"),
    [
        (None, [], "127.0.0.1"),
        ("", [], "127.0.0.1"),
        ("0.0.0.0", [], "0.0.0.0"),
        ("0.0.0.0", ["--host", "127.0.0.1"], "127.0.0.1"),
    ],
)
def test_the_listening_address_without_host_comes_from_the_variable_else_loopback(
    tmp_path: Path, variable: str | None, arguments: list[str], listening: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key != HOST_VARIABLE}
    if variable is not None:
        env[HOST_VARIABLE] = variable
    port = free_port()
    command = [*python_app_command("apps.tutorialapp"), "requestor", str(port), *arguments]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == f"taskapi app listening on {listening}:{port}"

        async def call() -> float:
            client = RequestorAppClient(await wait_until_serving("127.0.0.1", port, timeout=30))
            try:
                return await client.run_benchmark()
            finally:
                client.close()

        assert asyncio.run(call()) > 0
    finally:
        server.terminate()
        server.wait(timeout=30)
