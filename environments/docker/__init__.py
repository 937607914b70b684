"""The docker environments: containers of locally built, whitelisted images, hardened, on a Docker engine.

Public API: `DockerCpuEnvironment` (docker_cpu) and `DockerGpuEnvironment` (docker_gpu) with `DockerConfig`
and `DockerPrerequisites`; payloads are `DockerRun`s with `DockerLimits`; `DockerRuntime` is one container's
lifecycle; `DockerAppServer` serves a docker app's `requestor PORT` / `provider PORT` for the node (made by
`DockerAppServing`, how `DockerEnvironment.app_serving` serves a build);
`compute_subtask` runs one provider Compute in its own container. Images: `environments.docker.images`.
"""

from environments.docker.app_server import DockerAppServer, DockerAppServing
from environments.docker.compute import ComputeFailed, ComputeResult, compute_subtask
from environments.docker.environment import (
    DockerConfig,
    DockerCpuEnvironment,
    DockerEnvironment,
    DockerPrerequisites,
)
from environments.docker.gpu import DockerGpuEnvironment, GpuDiscovery, GpuInfo, discover
from environments.docker.runtime import DockerRuntime
from environments.docker.spec import DockerLimits, DockerRun, GpuPassthrough

__all__ = [
    "ComputeFailed",
    "ComputeResult",
    "DockerAppServer",
    "DockerAppServing",
    "DockerConfig",
    "DockerCpuEnvironment",
    "DockerEnvironment",
    "DockerGpuEnvironment",
    "DockerLimits",
    "DockerPrerequisites",
    "DockerRun",
    "DockerRuntime",
    "GpuDiscovery",
    "GpuInfo",
    "GpuPassthrough",
    "compute_subtask",
    "discover",
]
