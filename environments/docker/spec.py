"""What a docker run is (`DockerRun`, `DockerLimits`, `GpuPassthrough`) and the hardened container settings
made from it (`container_settings`): pure functions, no engine needed.

Every container gets: no network (or, for app servers, an internal network with no egress and no traffic
between containers; never a published host port), all capabilities dropped, no-new-privileges, a read-only
root file system with a private /tmp, the work dir bind-mounted read-write at /golem/work, memory (no swap),
CPU and pids limits, and an unprivileged user (see `container_user`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from environments.docker.owner import OWNER_LABEL, owner_of

WORK_DIR = "/golem/work"
"""Where the run's work dir is mounted inside the container (Golem's convention)."""

CONTAINER_UID = 10001
"""The unprivileged user containers run as when the node itself runs as root."""

LABEL = "org.taskapi.environment"
"""Label on every container the docker environments start (its value: the env id)."""

MIB = 1024 * 1024


class DockerLimits(BaseModel):
    """Resource limits of one container; `wall_time_s` is the deadline after which it is stopped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_bytes: int = Field(default=1024 * MIB, ge=16 * MIB, description="memory limit, no swap on top")
    cpus: float = Field(default=1.0, gt=0, description="CPU time limit in cores")
    pids: int = Field(default=256, ge=8, description="processes and threads at most")
    tmp_bytes: int = Field(default=256 * MIB, ge=MIB, description="size of the private /tmp (a tmpfs)")
    wall_time_s: float | None = Field(default=3600.0, gt=0, description="stopped after this; None: never")


@dataclass(frozen=True)
class GpuPassthrough:
    """How a container gets the GPUs: `device_requests` through an NVIDIA runtime, or explicit device nodes
    plus a read-only bind of the driver's files (works without any NVIDIA container runtime)."""

    device_nodes: tuple[str, ...] = ()
    driver_dir: Path | None = None
    """Bound read-only at /usr/local/nvidia; its lib64 goes on LD_LIBRARY_PATH."""
    driver_files: tuple[Path, ...] = ()
    """Single driver libraries bound read-only into /usr/local/nvidia/lib64 when there is no driver_dir."""
    use_device_requests: bool = False


@dataclass(frozen=True)
class DockerRun:
    """One container: `image` (repository:tag, or repository@sha256:...) running `command`.

    `work_dir` (host path) is bound read-write at /golem/work and is the working directory. `network`
    "none" gives no network at all; "internal" joins the environment's internal app network (no egress, no
    traffic to other containers), which app servers use so the node can reach their port.
    """

    image: str
    command: tuple[str, ...] = ()
    work_dir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    limits: DockerLimits | None = None
    network: Literal["none", "internal"] = "none"
    entrypoint: tuple[str, ...] | None = None
    name_hint: str = "run"
    user: tuple[int, int] | None = None
    """uid, gid inside the container; None: `container_user`'s choice (never root)."""


def container_user(work_dir: Path | None, euid: int | None = None) -> tuple[int, int]:
    """The uid:gid a container runs as: the node's own when it is not root, else `CONTAINER_UID`.

    Never root inside the container. When the node is root, the caller gives the work dir to that user
    (`adopt_work_dir`), so the app can write it and the node (root) can still read everything.
    """
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        return euid, os.getegid()
    return CONTAINER_UID, CONTAINER_UID


def adopt_work_dir(work_dir: Path, uid: int, gid: int) -> None:
    """Give the work dir tree to the container's user (only possible, and only needed, as root)."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(work_dir):
        os.lchown(root, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def gpu_settings(gpu: GpuPassthrough) -> dict[str, Any]:
    """The container settings that pass the GPUs through."""
    if gpu.use_device_requests:
        import docker.types

        return {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]}
    settings: dict[str, Any] = {
        "devices": [f"{node}:{node}:rwm" for node in gpu.device_nodes],
        "volumes": {},
        "environment": {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib64", "NVIDIA_VISIBLE_DEVICES": "all"},
    }
    if gpu.driver_dir is not None:
        settings["volumes"][str(gpu.driver_dir)] = {"bind": "/usr/local/nvidia", "mode": "ro"}
    for library in gpu.driver_files:
        settings["volumes"][str(library)] = {"bind": f"/usr/local/nvidia/lib64/{library.name}", "mode": "ro"}
    return settings


def container_settings(
    run: DockerRun,
    limits: DockerLimits,
    *,
    env_id: str,
    user: tuple[int, int],
    app_network: str | None = None,
    gpu: GpuPassthrough | None = None,
) -> dict[str, Any]:
    """Keyword arguments of `docker.client.containers.create` for a hardened container running `run`."""
    if run.network == "internal" and app_network is None:
        raise ValueError("an internal-network run needs the environment's app network")
    settings: dict[str, Any] = {
        "image": run.image,
        "command": list(run.command),
        "detach": True,
        "labels": {LABEL: env_id, OWNER_LABEL: owner_of(os.getpid())},
        "user": f"{user[0]}:{user[1]}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes}"},
        "working_dir": WORK_DIR,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "ulimits": [{"name": "core", "soft": 0, "hard": 0}],
        "environment": {"HOME": "/tmp", **run.env},
        "volumes": {},
    }
    if run.entrypoint is not None:
        settings["entrypoint"] = list(run.entrypoint)
    if run.network == "none":
        settings["network_mode"] = "none"
    else:
        settings["network"] = app_network
    if run.work_dir is not None:
        settings["volumes"][str(run.work_dir)] = {"bind": WORK_DIR, "mode": "rw"}
    if gpu is not None:
        extra = gpu_settings(gpu)
        settings["volumes"].update(extra.pop("volumes", {}))
        settings["environment"] = {**extra.pop("environment", {}), **settings["environment"]}
        settings.update(extra)
    return settings
