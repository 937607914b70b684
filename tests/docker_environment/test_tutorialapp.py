"""tutorialapp's image in docker_cpu: `taskapi run --env docker_cpu` (a requestor container, provider
containers) gives the same answer as the Python build's kernel and the wasm build; the node's docker
runner computes an assignment and the provider's whitelist refuses images it does not list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from apps.sdk.workdir import ProviderTaskDir
from apps.tutorialapp import pow
from environments.docker import DockerAppServer, DockerCpuEnvironment
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import DockerRunner
from runtime.node.provider import Refused, Whitelist

from .drive import taskapi_run

REPO = Path(__file__).resolve().parents[2]

PARAMS = {"input": "hello", "difficulty": 12, "subtasks": 4}


def test_taskapi_run_on_docker_answers_like_the_python_kernel_and_the_wasm_build(
    tutorial_image: str, tmp_path: Path
) -> None:
    # The requestor's app server and every provider's compute are containers of the image.
    taskapi_run("tutorialapp", "docker_cpu", PARAMS, tmp_path / "docker")
    answer = json.loads((tmp_path / "docker" / "result.json").read_text())
    nonce = pow.search(str(PARAMS["input"]), int(str(PARAMS["difficulty"])), 0, 2**20)
    assert answer == {"nonce": nonce, "hash": pow.digest(str(PARAMS["input"]), nonce or 0).hex()}
    taskapi_run("tutorialapp", "wasm", PARAMS, tmp_path / "wasm")
    assert json.loads((tmp_path / "wasm" / "result.json").read_text()) == answer


def test_a_docker_app_asking_for_a_quorum_gets_every_subtask_computed_twice(
    tutorial_image: str, tmp_path: Path
) -> None:
    descriptor = json.loads((REPO / "images" / "tutorialapp" / "descriptor.json").read_text())
    descriptor.update(name="tutorialapp-quorum", redundancy={"quorum": 2, "referees": 1})
    (tmp_path / "quorum").mkdir()
    (tmp_path / "quorum" / "descriptor.json").write_text(json.dumps(descriptor))
    AppManager().add(tmp_path / "quorum", enable=True)
    summary = taskapi_run("tutorialapp-quorum", "docker_cpu", PARAMS, tmp_path / "out")
    counts = summary["subtasks"]
    assert isinstance(counts, dict) and set(counts) == {"accepted"} and counts["accepted"] % 2 == 0, counts
    nonce = pow.search(str(PARAMS["input"]), int(str(PARAMS["difficulty"])), 0, 2**20)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["nonce"] == nonce


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
