"""The container settings made from a run, and image references: pure functions, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from environments.docker import DockerLimits, DockerRun, GpuPassthrough
from environments.docker.environment import DockerPrerequisites, split_reference
from environments.docker.spec import CONTAINER_UID, WORK_DIR, container_settings, container_user


def settings(run: DockerRun, **kwargs: object) -> dict[str, object]:
    return container_settings(run, DockerLimits(), env_id="docker_cpu", user=(10001, 10001), **kwargs)  # type: ignore[arg-type]


def test_every_container_is_hardened() -> None:
    made = settings(DockerRun(image="taskapi/base:x", command=("true",), work_dir=Path("/w")))
    assert made["network_mode"] == "none" and "network" not in made
    assert made["cap_drop"] == ["ALL"]
    assert made["security_opt"] == ["no-new-privileges"]
    assert made["read_only"] is True
    assert made["user"] == "10001:10001"
    assert made["memswap_limit"] == made["mem_limit"] == DockerLimits().memory_bytes
    assert made["pids_limit"] == DockerLimits().pids and made["nano_cpus"] == 1_000_000_000
    assert made["volumes"] == {"/w": {"bind": WORK_DIR, "mode": "rw"}}
    assert made["working_dir"] == WORK_DIR
    assert "ports" not in made and "privileged" not in made


def test_app_servers_join_the_internal_network_and_publish_nothing() -> None:
    made = settings(DockerRun(image="i:t", network="internal"), app_network="taskapi-apps")
    assert made["network"] == "taskapi-apps" and "network_mode" not in made and "ports" not in made
    with pytest.raises(ValueError, match="app network"):
        settings(DockerRun(image="i:t", network="internal"))


def test_gpu_passthrough_without_a_runtime_binds_devices_and_driver_read_only() -> None:
    gpu = GpuPassthrough(
        device_nodes=("/dev/nvidia0", "/dev/nvidiactl"), driver_dir=Path("/usr/local/nvidia")
    )
    made = settings(DockerRun(image="i:t", work_dir=Path("/w")), gpu=gpu)
    assert made["devices"] == ["/dev/nvidia0:/dev/nvidia0:rwm", "/dev/nvidiactl:/dev/nvidiactl:rwm"]
    assert made["volumes"]["/usr/local/nvidia"] == {"bind": "/usr/local/nvidia", "mode": "ro"}  # type: ignore[index]
    assert made["environment"]["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"  # type: ignore[index]
    assert made["cap_drop"] == ["ALL"] and "device_requests" not in made


def test_gpu_with_an_nvidia_runtime_uses_device_requests() -> None:
    made = settings(DockerRun(image="i:t"), gpu=GpuPassthrough(use_device_requests=True))
    requests: list[dict[str, object]] = made["device_requests"]  # type: ignore[assignment]
    assert len(requests) == 1 and requests[0]["Capabilities"] == [["gpu"]] and "devices" not in made


def test_containers_never_run_as_root() -> None:
    assert container_user(None, euid=0) == (CONTAINER_UID, CONTAINER_UID)
    assert container_user(None, euid=1234)[0] == 1234


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("taskapi/base:c-1", ("taskapi/base", "c-1", None)),
        ("taskapi/base", ("taskapi/base", None, None)),
        ("host:5000/a/b:1.0", ("host:5000/a/b", "1.0", None)),
        ("a/b@sha256:" + "0" * 64, ("a/b", None, "sha256:" + "0" * 64)),
    ],
)
def test_split_reference(reference: str, parts: tuple[str, str | None, str | None]) -> None:
    assert split_reference(reference) == parts


def test_prerequisites_match_the_descriptor_format() -> None:
    prerequisites = DockerPrerequisites.model_validate({"image": "taskapi/tutorialapp", "tag": "0.1.0"})
    assert prerequisites.reference == "taskapi/tutorialapp:0.1.0"
    with pytest.raises(ValueError, match="digest"):
        DockerPrerequisites.model_validate({"image": "a", "digest": "md5:1"})
