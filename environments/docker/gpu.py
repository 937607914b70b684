"""docker_gpu: GPU discovery and the environment that passes GPUs into containers.

Discovery tries NVML (the `nvidia-ml-py` package), then `nvidia-smi`, then the device nodes alone, and
reports model, memory and driver as capabilities. Containers get the GPUs through `device_requests` when the
engine has an NVIDIA runtime; otherwise (verified on a machine without one) through the device nodes
(/dev/nvidia0..N, nvidiactl, nvidia-uvm, nvidia-uvm-tools) and a read-only bind of the driver's files at
/usr/local/nvidia with LD_LIBRARY_PATH=/usr/local/nvidia/lib64. Without a GPU the environment is
unsupported and says why.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.base import Capabilities, Support
from environments.docker.engine import engine_support
from environments.docker.environment import DockerConfig, DockerEnvironment
from environments.docker.spec import GpuPassthrough

DEFAULT_DEV_ROOT = Path("/dev")
DEFAULT_DRIVER_DIRS = (Path("/usr/local/nvidia"),)
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
DRIVER_LIBRARIES = re.compile(r"^lib(cuda|nvidia-ml|nvidia-ptxjitcompiler|nvidia-nvvm|nvidia-gpucomp)\.so")
SMI_TIMEOUT_S = 20


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as discovery saw it."""

    index: int
    name: str
    memory_bytes: int | None = None
    uuid: str | None = None


@dataclass(frozen=True)
class GpuDiscovery:
    """What this machine has: GPUs, driver, device nodes and driver files; `source` says who told us."""

    gpus: tuple[GpuInfo, ...] = ()
    driver_version: str | None = None
    device_nodes: tuple[str, ...] = ()
    driver_dir: Path | None = None
    driver_files: tuple[Path, ...] = ()
    source: str = "none"
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def usable(self) -> bool:
        """GPUs found, with device nodes to pass and driver files to mount."""
        has_primary = any(re.fullmatch(r".*/nvidia\d+", node) for node in self.device_nodes)
        return bool(self.gpus) and has_primary and (self.driver_dir is not None or bool(self.driver_files))

    def why_not(self) -> str:
        """Why the GPUs cannot be used (empty when they can)."""
        if self.usable:
            return ""
        reasons = list(self.problems)
        if not self.gpus:
            reasons.insert(0, "no NVIDIA GPU found")
        elif not any(re.fullmatch(r".*/nvidia\d+", node) for node in self.device_nodes):
            reasons.insert(0, "GPUs are listed but no /dev/nvidiaN device node exists")
        else:
            reasons.insert(0, "no driver files (neither /usr/local/nvidia nor libcuda in the linker cache)")
        return "; ".join(reasons)

    def capabilities(self) -> dict[str, Any]:
        """Model, memory and driver of each GPU, as offered to requestors."""
        return {
            "gpus": [
                {"index": gpu.index, "model": gpu.name, "memory_bytes": gpu.memory_bytes, "uuid": gpu.uuid}
                for gpu in self.gpus
            ],
            "driver_version": self.driver_version,
            "source": self.source,
        }

    def describe(self) -> str:
        names = ", ".join(
            f"{gpu.name}" + (f" ({gpu.memory_bytes / 2**30:.0f} GiB)" if gpu.memory_bytes else "")
            for gpu in self.gpus
        )
        return f"{len(self.gpus)} GPU(s): {names}; driver {self.driver_version or '?'} (via {self.source})"


def device_nodes(dev_root: Path = DEFAULT_DEV_ROOT) -> tuple[str, ...]:
    """The NVIDIA device nodes present: /dev/nvidiaN first, then the control nodes."""
    if not dev_root.is_dir():
        return ()
    numbered = sorted(
        (p for p in dev_root.iterdir() if re.fullmatch(r"nvidia\d+", p.name)), key=lambda p: int(p.name[6:])
    )
    control = [dev_root / name for name in CONTROL_NODES if (dev_root / name).exists()]
    return tuple(str(path) for path in [*numbered, *control])


def _nvml() -> tuple[list[GpuInfo], str | None]:
    import pynvml

    pynvml.nvmlInit()
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            gpus.append(GpuInfo(index, _text(name), int(memory), _text(uuid)))
        return gpus, _text(driver)
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_nvidia_smi(output: str) -> tuple[list[GpuInfo], str | None]:
    """GPUs and driver from `nvidia-smi --query-gpu=index,name,memory.total,uuid,driver_version
    --format=csv,noheader,nounits` (memory in MiB)."""
    gpus, driver = [], None
    for line in output.splitlines():
        fields = [part.strip() for part in line.split(",")]
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        memory = int(float(fields[2]) * 1024 * 1024) if re.fullmatch(r"[\d.]+", fields[2]) else None
        gpus.append(GpuInfo(int(fields[0]), fields[1], memory, fields[3] or None))
        driver = fields[4] or driver
    return gpus, driver


def _nvidia_smi(smi: str) -> tuple[list[GpuInfo], str | None]:
    query = "--query-gpu=index,name,memory.total,uuid,driver_version"
    output = subprocess.run(
        [smi, query, "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=SMI_TIMEOUT_S,
        check=True,
    ).stdout
    return parse_nvidia_smi(output)


def _driver_files() -> tuple[Path, ...]:
    """Driver libraries from the linker cache, for machines without /usr/local/nvidia."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
        found = []
        for line in listing.splitlines():
            path = Path(line.rpartition("=>")[2].strip())
            if DRIVER_LIBRARIES.match(path.name) and ("x86-64" in line or "aarch64" in line):
                found.append(path)
        return tuple(sorted(set(found)))
    return ()


def discover(
    dev_root: Path = DEFAULT_DEV_ROOT,
    driver_dirs: tuple[Path, ...] = DEFAULT_DRIVER_DIRS,
    use_nvml: bool = True,
    smi_paths: tuple[str, ...] | None = None,
) -> GpuDiscovery:
    """Find GPUs by NVML, else nvidia-smi, else device nodes; and what a container needs to use them."""
    problems: list[str] = []
    gpus: list[GpuInfo] = []
    driver: str | None = None
    source = "none"
    if use_nvml:
        try:
            gpus, driver = _nvml()
            source = "nvml"
        except Exception as exc:
            problems.append(f"NVML: {type(exc).__name__}: {exc}")
    if not gpus:
        candidates = smi_paths
        if candidates is None:
            candidates = (*(str(d / "bin" / "nvidia-smi") for d in driver_dirs), "nvidia-smi")
        smi = next((found for c in candidates if (found := shutil.which(c))), None)
        if smi is None:
            problems.append("nvidia-smi: not found")
        else:
            try:
                gpus, driver = _nvidia_smi(smi)
                source = "nvidia-smi"
            except (OSError, subprocess.SubprocessError) as exc:
                problems.append(f"nvidia-smi: {type(exc).__name__}: {exc}")
    nodes = device_nodes(dev_root)
    if not gpus:
        numbered = [node for node in nodes if re.fullmatch(r".*/nvidia\d+", node)]
        gpus = [GpuInfo(int(node.rpartition("nvidia")[2]), "unknown NVIDIA GPU") for node in numbered]
        source = "device nodes" if gpus else source
        if not nodes:
            problems.append(f"no NVIDIA device nodes in {dev_root}")
    driver_dir = next((d for d in driver_dirs if (d / "lib64").is_dir() or (d / "lib").is_dir()), None)
    files = () if driver_dir is not None or not gpus else _driver_files()
    return GpuDiscovery(tuple(gpus), driver, nodes, driver_dir, files, source, tuple(problems))


class DockerGpuEnvironment(DockerEnvironment):
    """docker_gpu: containers with the machine's NVIDIA GPUs passed through."""

    env_id = "docker_gpu"
    declared_capabilities = Capabilities(
        deterministic=False, metered=False, gpu=True, network=True, serves_apps=True
    )
    setup_hint = "docker_gpu needs an NVIDIA GPU and driver and a Docker engine (`scripts/setup_docker`)"

    def __init__(self, config: DockerConfig | None = None, discovery: GpuDiscovery | None = None) -> None:
        super().__init__(config)
        self._discovery = discovery
        self._nvidia_runtime = False

    @classmethod
    def support(cls) -> Support:
        return cls.support_with(discover())

    @classmethod
    def support_with(cls, discovery: GpuDiscovery) -> Support:
        """Support given a discovery: a usable GPU and an engine that answers."""
        if not discovery.usable:
            return Support(False, f"docker_gpu is unsupported here: {discovery.why_not()}")
        engine = engine_support()
        if not engine.supported:
            return engine
        return Support(True, f"{discovery.describe()}; {engine.reason}")

    @property
    def discovery(self) -> GpuDiscovery:
        if self._discovery is None:
            self._discovery = discover()
        return self._discovery

    def capabilities(self) -> dict[str, Any]:
        """GPU model, memory and driver, for offers."""
        return self.discovery.capabilities()

    async def _prepare(self) -> None:
        if not self.discovery.usable:
            raise RuntimeError(f"docker_gpu is unsupported here: {self.discovery.why_not()}")
        await super()._prepare()
        self._nvidia_runtime = "nvidia" in await self.engine.call(self.engine.runtimes)

    def gpu_passthrough(self) -> GpuPassthrough:
        """device_requests with an NVIDIA runtime, else device nodes + driver files (CDI-style)."""
        discovery = self.discovery
        if self._nvidia_runtime and not os.environ.get("TASKAPI_GPU_EXPLICIT"):
            return GpuPassthrough(use_device_requests=True)
        return GpuPassthrough(
            device_nodes=discovery.device_nodes,
            driver_dir=discovery.driver_dir,
            driver_files=discovery.driver_files,
        )
