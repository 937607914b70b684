"""Driving docker apps in tests: `taskapi run` as a user runs it, and a minimal requestor loop over app
containers (what the node does, without the node) for checks that need each verdict."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from apps.sdk.client import RequestorAppClient
from apps.sdk.handlers import JsonDict, VerifyResult
from environments.docker import ComputeResult, DockerAppServer, DockerCpuEnvironment, compute_subtask

TASKAPI = str(Path(sys.executable).with_name("taskapi"))


def taskapi_run(app: str, env: str, params: dict[str, object], output: Path) -> dict[str, object]:
    """`taskapi run APP --env ENV ... --json`: requestor, app server and providers; the JSON summary."""
    settings = [arg for key, value in params.items() for arg in ("--set", f"{key}={value}")]
    ran = subprocess.run(
        [TASKAPI, "run", app, "--env", env, *settings, "--output", str(output), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary: dict[str, object] = json.loads(ran.stdout)
    assert summary["env"] == env
    return summary


@dataclass
class TaskRun:
    """What a driven task produced: its output dir and each subtask's verdict and usage."""

    outputs: Path
    verdicts: dict[str, tuple[VerifyResult, str]] = field(default_factory=dict)
    results: dict[str, ComputeResult] = field(default_factory=dict)


async def deliver(work: Path, task_id: str, subtask_id: str, result_file: Path) -> None:
    """Put a provider's result where the node puts it before Verify."""
    target = work / "requestor" / task_id / "subtask_outputs" / subtask_id
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result_file, target / result_file.name)


async def run_task(
    env: DockerCpuEnvironment, image: str, work: Path, task_id: str, params: JsonDict, concurrency: int = 2
) -> TaskRun:
    """Create a task in a requestor container, compute its subtasks in provider containers (`concurrency`
    at a time, each with the resources the app named), verify every result; return when none is pending."""
    server = DockerAppServer(env, image, "requestor", work / "requestor")
    client = RequestorAppClient(await server.start())
    run = TaskRun(work / "requestor" / task_id / "task_outputs")
    try:
        await client.create_task(task_id, 100, params)
        inputs = work / "requestor" / task_id / "subtask_inputs"
        counter = 0
        while await client.has_pending_subtasks(task_id):
            batch = []
            for _ in range(concurrency):
                counter += 1
                subtask = await client.next_subtask(task_id, f"s{counter}")
                if subtask is None:
                    break
                provider_dir = work / "provider" / f"s{counter}"
                (provider_dir / "subtask_inputs").mkdir(parents=True)
                for name in subtask.resources:
                    shutil.copyfile(inputs / name, provider_dir / "subtask_inputs" / name)
                batch.append((f"s{counter}", subtask.params, provider_dir))
            results = await asyncio.gather(
                *(compute_subtask(env, image, directory, task_id, sid, p) for sid, p, directory in batch)
            )
            for (subtask_id, _, _), result in zip(batch, results, strict=True):
                run.results[subtask_id] = result
                await deliver(work, task_id, subtask_id, result.output)
                run.verdicts[subtask_id] = await client.verify(task_id, subtask_id)
        await client.shutdown()
    finally:
        client.close()
        await server.wait(timeout=10)
    return run
