"""One provider Compute in its own container (Golem's model): start the app image as `provider PORT`, call
Compute, sample the container's usage while it still runs, shut it down; its exit and removal are deferred
(`DockerEnvironment.defer`), so the caller has the result without waiting for them.

Node-agnostic, so the node's docker runner is a thin adapter: it passes the task dir (resources already in
subtask_inputs) and gets back the output file and the usage counters, or `ComputeFailed` with the reason
(the memory limit, the deadline, the app's own error).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpclib.exceptions import GRPCError

from apps.sdk.client import ProviderAppClient
from apps.sdk.sandboxed_files import UnsafePath, check_file
from environments.base import UsageCounters
from environments.docker.app_server import DockerAppServer
from environments.docker.environment import DockerEnvironment
from environments.docker.spec import DockerLimits

SHUTDOWN_GRACE_S = 10.0


class ComputeFailed(RuntimeError):
    """The subtask could not be computed; the message says why (limit, deadline, app error, log tail)."""


@dataclass(frozen=True)
class ComputeResult:
    """The output file (inside the task dir) and what the container used."""

    output: Path
    usage: UsageCounters


async def compute_subtask(
    environment: DockerEnvironment,
    image: str,
    task_dir: Path,
    task_id: str,
    subtask_id: str,
    params: dict[str, Any],
    limits: DockerLimits | None = None,
) -> ComputeResult:
    """Compute one subtask of a docker app in a fresh container serving `task_dir`."""
    limits = limits or environment.config.limits
    server = DockerAppServer(environment, image, "provider", task_dir, persistent=True, limits=limits)
    try:
        channel = await server.start()
    except GRPCError as exc:
        raise ComputeFailed(exc.message or str(exc)) from exc
    client = ProviderAppClient(channel, timeout=(limits.wall_time_s or 24 * 3600) + 30)
    began = time.monotonic()
    wall_ms = 0.0
    try:
        output = await client.compute(task_id, subtask_id, params)
        wall_ms = (time.monotonic() - began) * 1000
        await server.snapshot_usage()
    except GRPCError as exc:
        await server.wait(timeout=1.0)
        reason = server.failure_reason or exc.message or str(exc)
        log_tail = server.log_tail(800)
        raise ComputeFailed(f"compute of subtask {subtask_id} failed: {reason}; app log: {log_tail}") from exc
    finally:
        with contextlib.suppress(GRPCError):
            if server.running:
                await client.shutdown()
        client.close()
    # The result is complete: the container's exit and removal happen off the caller's path.
    environment.defer(server.wait(timeout=SHUTDOWN_GRACE_S))
    try:  # the container wrote that folder: a link there is refused, never followed
        path = check_file(task_dir, output)
    except (UnsafePath, OSError) as exc:
        raise ComputeFailed(f"the app returned an output that is not a file in its task dir: {exc}") from exc
    usage = server.usage()
    return ComputeResult(path, UsageCounters(wall_ms, usage.cpu_ns, usage.peak_memory_bytes))
