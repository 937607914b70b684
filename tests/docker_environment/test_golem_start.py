"""Our app images started as Golem's node starts them: `IMAGE requestor PORT` / `IMAGE provider PORT`, no
`--host`, the node dialling the container's own address. The SDK image sets TASKAPI_APP_HOST=0.0.0.0, so
the server listens on all the container's interfaces and real gRPC calls reach it there. (Before, the
server took its loopback default inside the container too, and no call from outside could reach it.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from apps.sdk.client import ProviderAppClient, RequestorAppClient, wait_until_serving
from environments.docker import DockerCpuEnvironment
from environments.docker.runtime import DockerRuntime
from environments.docker.spec import DockerRun
from environments.status import RuntimeStatus

PORT = 50051  # inside the container's own network namespace: no clash between tests


async def started_like_golem(env: DockerCpuEnvironment, image: str, role: str, work: Path) -> DockerRuntime:
    """A container of `image` running its entrypoint with exactly `role PORT`, on the app network."""
    await env.ensure_app_network()
    runtime = env.runtime(
        DockerRun(image=image, command=(role, str(PORT)), work_dir=work, network="internal")
    )
    await runtime.prepare()
    await runtime.start()
    return runtime


async def removed(runtime: DockerRuntime) -> None:
    if runtime.status() is RuntimeStatus.RUNNING:
        await runtime.stop()
    if runtime.status() is not RuntimeStatus.TORN_DOWN:
        await runtime.clean_up()


def test_an_image_started_without_host_is_reached_at_the_containers_address(
    docker_env: DockerCpuEnvironment, tutorial_image: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        requestor = await started_like_golem(docker_env, tutorial_image, "requestor", tmp_path / "requestor")
        try:
            address = await requestor.address()
            client = RequestorAppClient(await wait_until_serving(address, PORT, timeout=30))
            try:
                created = await client.create_task(
                    "t1", 4, {"input": "hello", "difficulty": 4, "subtasks": 2}
                )
                assert created.env_id == "docker_cpu"
                subtask = await client.next_subtask("t1", "s1")
                assert subtask is not None and subtask.params
                await client.shutdown()
            finally:
                client.close()
            assert f"taskapi app listening on 0.0.0.0:{PORT}" in await requestor.logs()
        finally:
            await removed(requestor)
        # A provider started Golem's way serves one call (Golem's convention), then exits with code 0.
        provider = await started_like_golem(docker_env, tutorial_image, "provider", tmp_path / "provider")
        try:
            address = await provider.address()
            computer = ProviderAppClient(await wait_until_serving(address, PORT, timeout=30))
            try:
                assert await computer.run_benchmark() > 0
            finally:
                computer.close()
            assert await asyncio.wait_for(provider.wait(), 30) is RuntimeStatus.STOPPED
            assert provider.exit_code == 0
        finally:
            await removed(provider)

    asyncio.run(scenario())
