"""tutorialapp's image in docker_cpu: a whole task through a requestor container and provider containers
gives the same answer as the Python build's kernel and the wasm build; the node's docker runner computes an
assignment and the provider's whitelist refuses images it does not list."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.sdk.client import RequestorAppClient
from apps.sdk.workdir import ProviderTaskDir
from apps.tutorialapp import pow
from environments.docker import DockerAppServer, DockerCpuEnvironment, compute_subtask
from protos import node_pb2 as npb
from runtime.node.compute import DockerRunner
from runtime.node.provider import Refused, Whitelist

PARAMS = {"input": "hello", "difficulty": 12, "subtasks": 4}
TASKAPI = str(Path(sys.executable).with_name("taskapi"))


async def run_task(env: DockerCpuEnvironment, image: str, work: Path, task_id: str) -> dict[str, object]:
    """Drive one task like a requestor node would: two provider containers at a time."""
    server = DockerAppServer(env, image, "requestor", work / "requestor")
    client = RequestorAppClient(await server.start())
    try:
        created = await client.create_task(task_id, 8, PARAMS)
        assert created.env_id == "docker_cpu" and created.prerequisites["image"] == "taskapi/tutorialapp"
        counter = 0
        while await client.has_pending_subtasks(task_id):
            batch = []
            for _ in range(2):
                counter += 1
                subtask = await client.next_subtask(task_id, f"s{counter}")
                if subtask is not None:
                    batch.append((f"s{counter}", subtask.params))
            results = await asyncio.gather(
                *(
                    compute_subtask(env, image, work / "provider", task_id, subtask_id, params)
                    for subtask_id, params in batch
                )
            )
            for (subtask_id, _), result in zip(batch, results, strict=True):
                assert result.usage.cpu_ns > 0 and result.usage.peak_memory_bytes > 0
                delivered = work / "requestor" / task_id / "subtask_outputs" / subtask_id
                delivered.mkdir(parents=True)
                (delivered / result.output.name).write_bytes(result.output.read_bytes())
                verdict, reason = await client.verify(task_id, subtask_id)
                assert verdict == 0, reason
        answer: dict[str, object] = json.loads(
            (work / "requestor" / task_id / "task_outputs" / "result.json").read_text()
        )
        await client.shutdown()
    finally:
        client.close()
        await server.wait(timeout=10)
    return answer


def test_the_docker_build_answers_like_the_python_kernel_and_the_wasm_build(
    docker_env: DockerCpuEnvironment, tutorial_image: str, tmp_path: Path
) -> None:
    answer = asyncio.run(run_task(docker_env, tutorial_image, tmp_path, "parity"))
    nonce = pow.search(str(PARAMS["input"]), int(str(PARAMS["difficulty"])), 0, 2**20)
    assert answer == {"nonce": nonce, "hash": pow.digest(str(PARAMS["input"]), nonce or 0).hex()}
    wasm_out = tmp_path / "wasm-out"
    settings = [arg for key, value in PARAMS.items() for arg in ("--set", f"{key}={value}")]
    ran = subprocess.run(
        [TASKAPI, "run", "tutorialapp", "--env", "wasm", *settings, "--output", str(wasm_out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads((wasm_out / "result.json").read_text()) == answer


def test_app_servers_publish_no_host_port_and_have_no_way_out(
    docker_env: DockerCpuEnvironment, tutorial_image: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        server = DockerAppServer(docker_env, tutorial_image, "requestor", tmp_path)
        channel = await server.start()
        container = server._runtime.container
        await docker_env.engine.call(container.reload)
        attrs = container.attrs
        assert attrs["HostConfig"]["PortBindings"] in (None, {})
        assert attrs["NetworkSettings"]["Ports"] in (None, {})
        [network] = attrs["NetworkSettings"]["Networks"]
        details = docker_env.engine.client.networks.get(network).attrs
        assert details["Internal"] is True
        assert details["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        assert attrs["HostConfig"]["CapDrop"] == ["ALL"] and attrs["HostConfig"]["ReadonlyRootfs"]
        channel.close()
        await server.kill()
        assert not server.running

    asyncio.run(scenario())


def assignment(image: str, subtask_id: str, params: dict[str, object]) -> npb.Assignment:
    repository, _, tag = image.partition(":")
    return npb.Assignment(
        task_id="node-task",
        subtask_id=subtask_id,
        app_name="tutorialapp",
        env_id="docker_cpu",
        prerequisites_json=json.dumps({"image": repository, "tag": tag}),
        subtask_params_json=json.dumps(params),
    )


def test_the_node_docker_runner_computes_an_assignment(
    docker_env: DockerCpuEnvironment, tutorial_image: str, tmp_path: Path
) -> None:
    runner = DockerRunner(docker_env)
    params = {"input": "hello", "difficulty": 12, "start": 8192, "end": 12288}
    outcome = asyncio.run(
        runner.compute(assignment(tutorial_image, "s1", params), ProviderTaskDir(tmp_path), None)
    )
    claim = json.loads(outcome.output.read_text())
    assert claim["nonce"] == pow.search("hello", 12, 8192, 12288)
    assert outcome.output.is_relative_to(tmp_path)
    assert outcome.usage.cpu_ns > 0 and outcome.usage.peak_memory_bytes > 0


def test_the_provider_whitelist_takes_docker_images_by_repository_or_image_id(tutorial_image: str) -> None:
    job = assignment(tutorial_image, "s1", {})
    Whitelist(docker_repositories={"taskapi/tutorialapp"}).check(job)
    with pytest.raises(
        Refused, match="docker image taskapi/tutorialapp of app tutorialapp is not whitelisted"
    ):
        Whitelist(docker_repositories={"taskapi/blenderapp"}).check(job)
    pinned = npb.Assignment()
    pinned.CopyFrom(job)
    pinned.prerequisites_json = json.dumps({"image": "evil/app", "tag": "1", "digest": "sha256:" + "a" * 64})
    Whitelist(docker_digests={"sha256:" + "a" * 64}).check(pinned)
    with pytest.raises(Refused, match=r"evil/app \(image id sha256:aaa"):
        Whitelist(docker_repositories={"taskapi/tutorialapp"}).check(pinned)
