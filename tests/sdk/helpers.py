"""Small apps for SDK tests: a requestor that fails on demand, and ways to serve apps in tests."""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

from grpclib.client import Channel
from grpclib.health.service import Health
from grpclib.server import Server

from apps.sdk import (
    CreatedTask,
    JsonDict,
    ProviderAppHandler,
    ProviderTaskDir,
    RequestorAppHandler,
    RequestorTaskDir,
    Subtask,
    VerifyResult,
)
from apps.sdk.process import HOST, free_port
from apps.sdk.server import CallGate, ProviderAppService, RequestorAppService


class FailingRequestor(RequestorAppHandler):
    """A trivial requestor app whose method `fail_in` raises `error` (while `error` is set)."""

    def __init__(self, fail_in: str = "", error: BaseException | None = None) -> None:
        self.fail_in = fail_in
        self.error = error

    def _maybe_fail(self, method: str) -> None:
        if method == self.fail_in and self.error is not None:
            raise self.error

    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        self._maybe_fail("create_task")
        return CreatedTask(env_id="wasm", prerequisites={})

    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        self._maybe_fail("next_subtask")
        return Subtask(params={"subtask": subtask_id})

    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        self._maybe_fail("verify")
        return VerifyResult.SUCCESS, ""

    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        self._maybe_fail("discard_subtasks")
        return subtask_ids

    async def has_pending_subtasks(self, task_dir: RequestorTaskDir) -> bool:
        self._maybe_fail("has_pending_subtasks")
        return True

    async def abort_task(self, task_dir: RequestorTaskDir) -> None:
        self._maybe_fail("abort_task")

    async def abort_subtask(self, task_dir: RequestorTaskDir, subtask_id: str) -> None:
        self._maybe_fail("abort_subtask")

    async def run_benchmark(self, work_dir: Path) -> float:
        self._maybe_fail("run_benchmark")
        return 1.0


class FailingProvider(ProviderAppHandler):
    """A provider app whose Compute and RunBenchmark raise `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        raise self.error

    async def run_benchmark(self, work_dir: Path) -> float:
        raise self.error


@contextlib.asynccontextmanager
async def in_process(
    service: RequestorAppService | ProviderAppService, gate: CallGate
) -> AsyncIterator[Channel]:
    """Serve `service` (and Health) on a free loopback port in this event loop; yield a channel to it."""
    server = Server([service, Health({service: [gate.health]})])
    port = free_port()
    await server.start(HOST, port)
    channel = Channel(HOST, port)
    try:
        yield channel
    finally:
        channel.close()
        server.close()
        await server.wait_closed()


def app_script(directory: Path, provider_compute_body: str) -> list[str]:
    """The command of a one-file app: tutorialapp, whose provider's compute runs `provider_compute_body`."""
    body = textwrap.indent(textwrap.dedent(provider_compute_body).strip(), " " * 8)
    script = directory / "scripted_app.py"
    script.write_text(
        "import json\n"
        "import os\n"
        "import sys\n"
        "from pathlib import Path\n\n"
        "from apps.sdk.server import main\n"
        "from apps.tutorialapp.provider import TutorialProvider\n"
        "from apps.tutorialapp.requestor import TutorialRequestor\n\n\n"
        "class ScriptedProvider(TutorialProvider):\n"
        "    async def compute(self, task_dir, subtask_id, params):\n"
        f"{body}\n\n\n"
        "sys.exit(main(sys.argv[1:], requestor=TutorialRequestor, provider=ScriptedProvider))\n"
    )
    return [sys.executable, str(script)]
