"""GPU discovery from NVML / nvidia-smi / device nodes, and docker_gpu's support on this kind of machine."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from environments.docker import DockerGpuEnvironment, discover
from environments.docker.gpu import parse_nvidia_smi

SMI_OUTPUT = "0, NVIDIA H200, 143771, GPU-1234, 570.86.15\n1, NVIDIA H200, 143771, GPU-5678, 570.86.15\n"


def fake_machine(root: Path, gpus: int = 1, smi: str | None = SMI_OUTPUT) -> tuple[Path, Path, Path]:
    """A /dev with NVIDIA nodes (plain files stand in), a driver folder and an nvidia-smi script."""
    dev = root / "dev"
    dev.mkdir()
    for name in [*(f"nvidia{i}" for i in range(gpus)), "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]:
        (dev / name).touch()
    driver = root / "nvidia"
    (driver / "lib64").mkdir(parents=True)
    script = root / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{smi}'\n" if smi is not None else "#!/bin/sh\nexit 9\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return dev, driver, script


def test_nvidia_smi_output_parses_to_gpus_and_driver() -> None:
    gpus, driver = parse_nvidia_smi(SMI_OUTPUT + "garbage line\n")
    assert [gpu.name for gpu in gpus] == ["NVIDIA H200", "NVIDIA H200"]
    assert gpus[0].memory_bytes == 143771 * 1024 * 1024 and gpus[1].uuid == "GPU-5678"
    assert driver == "570.86.15"


def test_a_gpu_machine_is_discovered_with_capabilities(tmp_path: Path) -> None:
    dev, driver, smi = fake_machine(tmp_path, gpus=2)
    found = discover(dev, (driver,), use_nvml=False, smi_paths=(str(smi),))
    assert found.usable and found.source == "nvidia-smi"
    assert found.device_nodes[:2] == (str(dev / "nvidia0"), str(dev / "nvidia1"))
    assert str(dev / "nvidia-uvm") in found.device_nodes and found.driver_dir == driver
    capabilities = found.capabilities()
    assert capabilities["driver_version"] == "570.86.15"
    assert capabilities["gpus"][0]["model"] == "NVIDIA H200"
    env = DockerGpuEnvironment(discovery=found)
    passthrough = env.gpu_passthrough()
    assert passthrough.device_nodes == found.device_nodes and not passthrough.use_device_requests


def test_device_nodes_alone_still_find_the_gpus(tmp_path: Path) -> None:
    dev, driver, smi = fake_machine(tmp_path, smi=None)
    found = discover(dev, (driver,), use_nvml=False, smi_paths=(str(smi),))
    assert found.usable and found.source == "device nodes" and found.gpus[0].index == 0
    assert any("nvidia-smi" in problem for problem in found.problems)


def test_a_machine_without_gpus_is_unsupported_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    found = discover(tmp_path / "dev", (tmp_path / "none",), use_nvml=False, smi_paths=("no-such-smi",))
    assert not found.usable
    support = DockerGpuEnvironment.support_with(found)
    assert not support.supported
    assert "no NVIDIA GPU found" in support.reason and "nvidia-smi: not found" in support.reason


def test_this_machine_has_no_gpu_and_docker_gpu_says_so() -> None:
    if any(name.startswith("nvidia") for name in os.listdir("/dev")):
        pytest.skip("a GPU machine: scripts/gpu_check covers docker_gpu there")
    support = DockerGpuEnvironment.support()
    assert not support.supported and "docker_gpu is unsupported here" in support.reason
