"""`taskapi run`: a requestor and N providers in one process, talking the node protocol over loopback gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import ComputeRunner
from runtime.node.provider import ProviderConfig, ProviderNode, Whitelist
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import serve_requestor
from runtime.node.store import SubtaskRow
from runtime.node.task_inputs import send_inputs
from runtime.node.verification import VerificationConfig

HOST = "127.0.0.1"

StatusCallback = Callable[[npb.TaskStatus, list[SubtaskRow]], None]
"""Called about five times a second with the task's status and its subtasks (the requestor's store rows)."""
Attach = Callable[[RequestorNode, str], contextlib.AbstractAsyncContextManager[object]]
"""Served beside the node while the task runs (the dashboard), given the node and its control token."""


async def run_embedded(
    app: str,
    env: str | None,
    params: dict[str, Any],
    *,
    data_dir: Path,
    providers: int,
    capacity: int,
    runners: Callable[[], list[ComputeRunner]],
    whitelist: Whitelist,
    max_subtasks: int = 10_000,
    config: RequestorConfig | None = None,
    on_status: StatusCallback | None = None,
    attach: Attach | None = None,
    inputs: Sequence[tuple[str, Path]] = (),
) -> npb.TaskStatus:
    """Run one task to its end on an in-process requestor with `providers` in-process providers.

    A `data_dir` that holds an unfinished task of this app with these parameters (a run that was
    interrupted) resumes it instead of starting another.
    """
    # Its providers are this process: re-executing their results would check the machine against itself.
    config = config or RequestorConfig(verification=VerificationConfig(reexecute=False))
    node = RequestorNode(data_dir / "requestor", config, app_manager=AppManager())
    # Looked up before start(): resuming may end the task at once (every subtask was already accepted).
    resumed = unfinished_task(node, app, env, params)
    await node.start()
    token = secrets.token_hex(16)
    server, port = await serve_requestor(node, HOST, 0, provider_token=token, control_token=token)
    extras = contextlib.AsyncExitStack()
    if attach is not None:
        await extras.enter_async_context(attach(node, token))
    stop = asyncio.Event()
    provider_runs = [
        asyncio.create_task(
            ProviderNode(
                ProviderConfig(HOST, port, token, data_dir / f"provider-{index}", capacity=capacity),
                runners(),
                whitelist,
            ).run(stop)
        )
        for index in range(providers)
    ]
    try:
        task_id = resumed or await node.submit_task(
            app, env, params, max_subtasks, await send_inputs(node.receive_input, inputs)
        )
        while True:
            status = node.task_status(task_id)
            if on_status is not None:
                on_status(status, node.store.subtasks(task_id=task_id))
            if status.state != "active":
                return status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.wait_for_task(task_id), 0.2)
    finally:
        # Cancelled, not only told to stop: a provider stops at once, its running subtasks with it (their
        # wasm workers killed, their containers stopped), also when the task ended with a copy still running.
        stop.set()
        for provider_run in provider_runs:
            provider_run.cancel()
        await asyncio.gather(*provider_runs, return_exceptions=True)
        await extras.aclose()
        server.close()
        await server.wait_closed()
        await node.stop()


def unfinished_task(node: RequestorNode, app: str, env: str | None, params: dict[str, Any]) -> str | None:
    """The id of an active task of `app` (on `env`, if given) whose parameters include `params`, if any."""
    for row in node.store.tasks():
        same_env = env is None or row.env_id == env
        same_params = all(row.params.get(k) == v for k, v in params.items())
        if row.state == "active" and row.app == app and same_env and same_params:
            return row.task_id
    return None
