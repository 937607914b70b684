"""Running one container to its end in a test."""

from __future__ import annotations

import asyncio

from environments.docker import DockerEnvironment, DockerRun, DockerRuntime
from environments.status import RuntimeStatus


async def run_to_end(env: DockerEnvironment, run: DockerRun) -> tuple[DockerRuntime, RuntimeStatus, str]:
    """Prepare, start and wait for one container; return the runtime (torn down), its status and its log."""
    runtime = env.runtime(run)
    try:
        await runtime.prepare()
        await runtime.start()
        status = await runtime.wait()
        logs = await runtime.logs(20_000)
    finally:
        if runtime.status() is RuntimeStatus.RUNNING:
            await runtime.stop()
        if runtime.status() is not RuntimeStatus.TORN_DOWN:
            await runtime.clean_up()
    return runtime, status, logs


def run_sync(env: DockerEnvironment, run: DockerRun) -> tuple[DockerRuntime, RuntimeStatus, str]:
    return asyncio.run(run_to_end(env, run))


def python(image: str, code: str, **fields: object) -> DockerRun:
    """A run of `python3 -c code` in `image`."""
    return DockerRun(image=image, entrypoint=("python3", "-c", code), **fields)  # type: ignore[arg-type]
