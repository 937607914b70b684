"""The fixture's RequestorApp and ProviderApp services and its server (Python 3.7, grpclib 0.2.4)."""

from __future__ import annotations

import asyncio
import functools
import json
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import taskapi_pb2 as pb  # type: ignore[import-not-found]  # generated into the fixture's own venv
from grpclib.const import Status
from grpclib.health.service import Health
from grpclib.server import Server
from taskapi_grpc import ProviderAppBase, RequestorAppBase  # type: ignore[import-not-found]

WORK_DIR = Path("/golem/work")
"""Where Golem's SDK apps keep their work dir, whatever their current directory."""

PREREQUISITES = {"image": "taskapi-test/golem-fixture", "tag": "0.24"}
PLAN = "plan.json"
RESULT = "result.txt"


def forward_exceptions(
    handler: Callable[[Any, Any], Awaitable[None]],
) -> Callable[[Any, Any], Awaitable[None]]:
    """Any exception becomes INTERNAL with its text, sent trailers-only (no headers were sent before)."""

    @functools.wraps(handler)
    async def wrapped(self: Any, stream: Any) -> None:
        try:
            await handler(self, stream)
        except Exception as exc:
            print(traceback.format_exc(), flush=True)
            await stream.send_trailing_metadata(status=Status.INTERNAL, status_message=str(exc))

    return wrapped


def sum_of_squares(numbers: list[int]) -> int:
    return sum(number * number for number in numbers)


class Plan:
    """The task's state, in `<task_dir>/plan.json`: one chunk of numbers per part, and who holds it."""

    def __init__(self, task_dir: Path) -> None:
        self.path = task_dir / PLAN
        data = json.loads(self.path.read_text())
        self.chunks: list[list[int]] = data["chunks"]
        self.holders: list[str | None] = data["holders"]
        self.done: list[int | None] = data["done"]
        self.fail_next_subtask: bool = data["fail_next_subtask"]

    @staticmethod
    def create(task_dir: Path, numbers: list[int], parts: int, fail_next_subtask: bool) -> None:
        size = -(-len(numbers) // parts)
        chunks = [numbers[start : start + size] for start in range(0, len(numbers), size)]
        data = {
            "chunks": chunks,
            "holders": [None] * len(chunks),
            "done": [None] * len(chunks),
            "fail_next_subtask": fail_next_subtask,
        }
        (task_dir / PLAN).write_text(json.dumps(data))  # no mkdir: the node made the task dir

    def save(self) -> None:
        data = {
            "chunks": self.chunks,
            "holders": self.holders,
            "done": self.done,
            "fail_next_subtask": self.fail_next_subtask,
        }
        self.path.write_text(json.dumps(data))

    def pending(self) -> int | None:
        for index, holder in enumerate(self.holders):
            if holder is None and self.done[index] is None:
                return index
        return None

    def release(self, subtask_id: str) -> bool:
        if subtask_id not in self.holders:
            return False
        index = self.holders.index(subtask_id)
        self.holders[index] = None
        self.done[index] = None
        return True


def read_numbers(task_dir: Path, params: dict[str, Any]) -> list[int]:
    name = params.get("numbers_file")
    if name is None:
        return [int(number) for number in params.get("numbers", [])]
    return [int(word) for word in (task_dir / "task_inputs" / name).read_text().split()]


class RequestorApp(RequestorAppBase):  # type: ignore[misc]
    @forward_exceptions
    async def CreateTask(self, stream: Any) -> None:
        request = await stream.recv_message()
        task_dir = WORK_DIR / request.task_id
        params = json.loads(request.task_params_json)
        parts = int(params.get("parts", 1))
        if parts < 1:
            raise ValueError(f"parts={parts}")
        numbers = read_numbers(task_dir, params)
        if not numbers:
            raise ValueError("no numbers to square")
        parts = min(parts, request.max_subtasks_count, len(numbers))
        Plan.create(task_dir, numbers, parts, bool(params.get("fail_next_subtask")))
        reply = pb.CreateTaskReply(env_id="docker_cpu", prerequisites_json=json.dumps(PREREQUISITES))
        await stream.send_message(reply)

    @forward_exceptions
    async def NextSubtask(self, stream: Any) -> None:
        request = await stream.recv_message()
        task_dir = WORK_DIR / request.task_id
        plan = Plan(task_dir)
        if plan.fail_next_subtask:
            raise RuntimeError(f"no subtask for node {request.opaque_node_id}: told to fail")
        reply = pb.NextSubtaskReply()
        index = plan.pending()
        if index is not None:
            resource = f"{request.subtask_id}.txt"
            numbers = " ".join(str(number) for number in plan.chunks[index])
            (task_dir / "subtask_inputs" / resource).write_text(numbers)  # the node made subtask_inputs/
            plan.holders[index] = request.subtask_id
            plan.save()
            reply.subtask.subtask_params_json = json.dumps({"part": index})
            reply.subtask.resources.extend([resource])
        await stream.send_message(reply)

    @forward_exceptions
    async def Verify(self, stream: Any) -> None:
        request = await stream.recv_message()
        task_dir = WORK_DIR / request.task_id
        plan = Plan(task_dir)
        index = plan.holders.index(request.subtask_id)
        claimed = int((task_dir / "subtask_outputs" / request.subtask_id / RESULT).read_text())
        reply = pb.VerifyReply()
        if claimed == sum_of_squares(plan.chunks[index]):
            plan.done[index] = claimed
            reply.result = pb.VerifyReply.SUCCESS
        else:
            plan.holders[index] = None
            reply.result = pb.VerifyReply.FAILURE
            reply.reason = f"part {index}: {claimed} is wrong"
        plan.save()
        if all(done is not None for done in plan.done):
            total = sum(done for done in plan.done if done is not None)
            (task_dir / "task_outputs" / RESULT).write_text(str(total))
        await stream.send_message(reply)

    @forward_exceptions
    async def DiscardSubtasks(self, stream: Any) -> None:
        request = await stream.recv_message()
        plan = Plan(WORK_DIR / request.task_id)
        discarded = [subtask_id for subtask_id in request.subtask_ids if plan.release(subtask_id)]
        plan.save()
        await stream.send_message(pb.DiscardSubtasksReply(discarded_subtask_ids=discarded))

    @forward_exceptions
    async def RunBenchmark(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(pb.RunBenchmarkReply(score=1.0))

    @forward_exceptions
    async def HasPendingSubtasks(self, stream: Any) -> None:
        request = await stream.recv_message()
        pending = Plan(WORK_DIR / request.task_id).pending() is not None
        await stream.send_message(pb.HasPendingSubtasksReply(has_pending_subtasks=pending))

    @forward_exceptions
    async def AbortTask(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(pb.AbortTaskReply())

    @forward_exceptions
    async def AbortSubtask(self, stream: Any) -> None:
        request = await stream.recv_message()
        plan = Plan(WORK_DIR / request.task_id)
        plan.release(request.subtask_id)
        plan.save()
        await stream.send_message(pb.AbortSubtaskReply())

    @forward_exceptions
    async def Shutdown(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(pb.ShutdownReply())
        self.shutdown.set()

    def __init__(self, shutdown: asyncio.Event) -> None:
        self.shutdown = shutdown


class ProviderApp(ProviderAppBase):  # type: ignore[misc]
    """Serves one Compute or RunBenchmark, then the server ends (Golem's convention)."""

    def __init__(self, shutdown: asyncio.Event) -> None:
        self.shutdown = shutdown

    @forward_exceptions
    async def Compute(self, stream: Any) -> None:
        try:
            request = await stream.recv_message()
            numbers = (WORK_DIR / "subtask_inputs" / f"{request.subtask_id}.txt").read_text()
            output = Path(request.subtask_id) / RESULT
            (WORK_DIR / request.subtask_id).mkdir(exist_ok=True)
            (WORK_DIR / output).write_text(str(sum_of_squares([int(word) for word in numbers.split()])))
            await stream.send_message(pb.ComputeReply(output_filepath=str(output)))
        finally:
            self.shutdown.set()

    @forward_exceptions
    async def RunBenchmark(self, stream: Any) -> None:
        try:
            await stream.recv_message()
            await stream.send_message(pb.RunBenchmarkReply(score=1.0))
        finally:
            self.shutdown.set()

    @forward_exceptions
    async def Shutdown(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(pb.ShutdownReply())
        self.shutdown.set()


async def serve(argv: list[str]) -> None:
    """`requestor PORT ...` or `provider PORT ...`: serve on all interfaces until shut down."""
    role, port = argv[0], int(argv[1])
    shutdown = asyncio.Event()
    app = RequestorApp(shutdown) if role == "requestor" else ProviderApp(shutdown)
    server = Server([app, Health()], loop=asyncio.get_event_loop())
    await server.start(host="", port=port)
    print(f"Starting server at port {port}", flush=True)
    await shutdown.wait()
    server.close()
    await server.wait_closed()
