"""`taskapi run`: a requestor and N providers in one process, talking the node protocol over loopback gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import ComputeRunner
from runtime.node.provider import ProviderConfig, ProviderNode, Whitelist
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import serve_requestor
from runtime.node.verification import VerificationConfig

HOST = "127.0.0.1"

StatusCallback = Callable[[npb.TaskStatus], None]
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
) -> npb.TaskStatus:
    """Run one task to its end on an in-process requestor with `providers` in-process providers."""
    # Its providers are this process: re-executing their results would check the machine against itself.
    config = config or RequestorConfig(verification=VerificationConfig(reexecute=False))
    node = RequestorNode(data_dir / "requestor", config, app_manager=AppManager())
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
        task_id = await node.submit_task(app, env, params, max_subtasks)
        while True:
            status = node.task_status(task_id)
            if on_status is not None:
                on_status(status)
            if status.state != "active":
                return status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.wait_for_task(task_id), 0.2)
    finally:
        stop.set()
        await asyncio.gather(*provider_runs, return_exceptions=True)
        await extras.aclose()
        server.close()
        await server.wait_closed()
        await node.stop()
