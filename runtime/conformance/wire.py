"""Synchronous access to real app server processes over real gRPC, for Hypothesis state machines.

A state machine's rules are plain functions, while grpclib is asyncio: one `Loop` runs every call to
completion. Calls go through the generated stubs (the wire protocol, as a Golem node speaks it), not
through the SDK's client, and come back as a `Reply` holding either the reply message or the gRPC
status and message of the error.

An app server is started by an `AppLauncher`: a local command (`command_launcher`, used for Python apps
and for wasm modules served by `python -m environments.wasm`) or anything else with the surface of
`apps.sdk.process.AppProcess` (a docker container, see `environments.app_serving`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from environments import app_serving
from environments.app_serving import AppLauncher, AppRole, command_launcher
from protos import taskapi_pb2 as pb
from protos.taskapi_grpc import ProviderAppStub, RequestorAppStub

T = TypeVar("T")

# A guard against hangs, never a timing assertion: no call of a correct app comes anywhere near it.
HANG_GUARD_S = 120.0
EXIT_GUARD_S = 30.0

# The work-dir names of Golem's task-api contract, written out here so that the checks check them.
TASK_INPUTS = "task_inputs"
SUBTASK_INPUTS = "subtask_inputs"
TASK_OUTPUTS = "task_outputs"
SUBTASK_OUTPUTS = "subtask_outputs"

APP_ERRORS = frozenset({Status.INTERNAL, Status.UNKNOWN})
"""What a call answers when the app's handler crashed (the error table of docs/protocol.md)."""


class Hang(AssertionError):
    """A call or a process exit that did not finish within the hang guard."""


@dataclass(frozen=True)
class Reply(Generic[T]):
    """The outcome of one call: `status` OK with `message` set, or an error status and its text."""

    status: Status
    details: str = ""
    message: T | None = None

    def value(self) -> T:
        assert self.status is Status.OK and self.message is not None, f"{self.status.name}: {self.details}"
        return self.message


class Loop:
    """One event loop that runs one awaitable at a time to completion; background tasks run meanwhile."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    def run(self, awaitable: Awaitable[T], what: str = "call", guard_s: float = HANG_GUARD_S) -> T:
        async def guarded() -> T:
            try:
                return await asyncio.wait_for(awaitable, guard_s)
            except TimeoutError:
                raise Hang(f"{what} did not finish within {guard_s:.0f} s") from None

        return self._loop.run_until_complete(guarded())

    def background(self, awaitable: Awaitable[T]) -> asyncio.Future[T]:
        return asyncio.ensure_future(awaitable, loop=self._loop)

    def call(self, awaitable: Awaitable[T], what: str) -> Reply[T]:
        """Run one gRPC call; a refused or broken connection is UNAVAILABLE, as the SDK client maps it."""
        try:
            return Reply(Status.OK, message=self.run(awaitable, what))
        except GRPCError as exc:
            return Reply(exc.status, exc.message or "")
        except (OSError, StreamTerminatedError) as exc:
            return Reply(Status.UNAVAILABLE, f"unreachable: {exc}")

    def close(self) -> None:
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


class AppServer:
    """An app server (`requestor|provider PORT`) on one work dir; it can be restarted.

    `command` is the local command that serves the app, or an `AppLauncher`. `start_in_background` lets a
    server boot while the caller goes on (a spare for single-call providers). The channel outlives the
    process, so calls after an exit meet a refused connection, as a node would.
    """

    def __init__(
        self,
        loop: Loop,
        command: Sequence[str] | AppLauncher,
        role: AppRole,
        work_dir: Path,
        *,
        persistent: bool = True,
    ) -> None:
        self.loop = loop
        self.launcher = command if callable(command) else command_launcher(command)
        self.role = role
        self.work_dir = work_dir
        self.persistent = persistent
        self._process: app_serving.AppServer | None = None
        self._channel: Channel | None = None
        self._starting: asyncio.Future[Channel] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def exited(self) -> bool:
        """True once the server was started and is known to have ended (a call would meet a closed port,
        or, for a container, an address that no longer answers at all)."""
        return self._starting is None and self._process is not None and not self._process.running

    def gone(self) -> Reply[Any]:
        """What a call to an exited server gets: UNAVAILABLE, as a refused connection (with the log's end)."""
        return Reply(
            Status.UNAVAILABLE,
            f"unreachable: the {self.role} server has exited; log: {self.log_tail()[-300:]}",
        )

    @property
    def channel(self) -> Channel:
        self._finish_start()
        assert self._channel is not None, f"the {self.role} server was never started"
        return self._channel

    def start_in_background(self) -> None:
        assert self._process is None or not self._process.running, "server already running"
        self._close_channel()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._process = self.launcher(self.role, self.work_dir, self.persistent)
        self._starting = self.loop.background(self._process.start())

    def start(self) -> None:
        self.start_in_background()
        self._finish_start()

    def _finish_start(self) -> None:
        if self._starting is not None:
            starting, self._starting = self._starting, None
            self._channel = self.loop.run(starting, f"start of the {self.role} server")

    def wait_exit(self, guard_s: float = EXIT_GUARD_S) -> int | None:
        """Wait for the process to exit by itself; its exit code (killed after the guard: negative)."""
        self._finish_start()
        if self._process is None:
            return None
        return self.loop.run(self._process.wait(guard_s), f"exit of the {self.role} server", guard_s + 30)

    def kill(self) -> None:
        self._finish_start()
        if self._process is not None:
            self.loop.run(self._process.kill(), f"kill of the {self.role} server")

    def close(self) -> None:
        """Kill the process if it still runs and close the channel."""
        if self._starting is not None or self.running:
            self.kill()
        self._close_channel()

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process is not None else ""

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


class RequestorWire:
    """The RequestorApp RPCs of one server, request fields in, `Reply` out (each call bounded by
    `timeout`; one that takes longer raises `Hang`)."""

    def __init__(self, server: AppServer, timeout: float = HANG_GUARD_S) -> None:
        self.server = server
        self.timeout = timeout

    def _call(self, name: str, call: Callable[[RequestorAppStub], Awaitable[T]]) -> Reply[T]:
        if self.server.exited:
            return self.server.gone()
        return self.server.loop.call(call(RequestorAppStub(self.server.channel)), f"RequestorApp.{name}")

    def create_task(
        self, task_id: str, max_subtasks_count: int, task_params_json: str
    ) -> Reply[pb.CreateTaskReply]:
        request = pb.CreateTaskRequest(
            task_id=task_id, max_subtasks_count=max_subtasks_count, task_params_json=task_params_json
        )
        return self._call("CreateTask", lambda stub: stub.CreateTask(request, timeout=self.timeout))

    def next_subtask(
        self, task_id: str, subtask_id: str, opaque_node_id: str = "node"
    ) -> Reply[pb.NextSubtaskReply]:
        request = pb.NextSubtaskRequest(task_id=task_id, subtask_id=subtask_id, opaque_node_id=opaque_node_id)
        return self._call("NextSubtask", lambda stub: stub.NextSubtask(request, timeout=self.timeout))

    def verify(self, task_id: str, subtask_id: str) -> Reply[pb.VerifyReply]:
        request = pb.VerifyRequest(task_id=task_id, subtask_id=subtask_id)
        return self._call("Verify", lambda stub: stub.Verify(request, timeout=self.timeout))

    def discard_subtasks(self, task_id: str, subtask_ids: list[str]) -> Reply[pb.DiscardSubtasksReply]:
        request = pb.DiscardSubtasksRequest(task_id=task_id, subtask_ids=subtask_ids)
        return self._call("DiscardSubtasks", lambda stub: stub.DiscardSubtasks(request, timeout=self.timeout))

    def run_benchmark(self) -> Reply[pb.RunBenchmarkReply]:
        request = pb.RunBenchmarkRequest()
        return self._call("RunBenchmark", lambda stub: stub.RunBenchmark(request, timeout=self.timeout))

    def has_pending_subtasks(self, task_id: str) -> Reply[pb.HasPendingSubtasksReply]:
        request = pb.HasPendingSubtasksRequest(task_id=task_id)
        return self._call(
            "HasPendingSubtasks", lambda stub: stub.HasPendingSubtasks(request, timeout=self.timeout)
        )

    def abort_task(self, task_id: str) -> Reply[pb.AbortTaskReply]:
        request = pb.AbortTaskRequest(task_id=task_id)
        return self._call("AbortTask", lambda stub: stub.AbortTask(request, timeout=self.timeout))

    def abort_subtask(self, task_id: str, subtask_id: str) -> Reply[pb.AbortSubtaskReply]:
        request = pb.AbortSubtaskRequest(task_id=task_id, subtask_id=subtask_id)
        return self._call("AbortSubtask", lambda stub: stub.AbortSubtask(request, timeout=self.timeout))

    def shutdown(self) -> Reply[pb.ShutdownReply]:
        request = pb.ShutdownRequest()
        return self._call("Shutdown", lambda stub: stub.Shutdown(request, timeout=self.timeout))


class ProviderWire:
    """The ProviderApp RPCs of one server, request fields in, `Reply` out."""

    def __init__(self, server: AppServer) -> None:
        self.server = server

    def _call(self, name: str, call: Callable[[ProviderAppStub], Awaitable[T]]) -> Reply[T]:
        if self.server.exited:
            return self.server.gone()
        return self.server.loop.call(call(ProviderAppStub(self.server.channel)), f"ProviderApp.{name}")

    def compute(
        self, task_id: str, subtask_id: str, subtask_params_json: str, timeout: float = HANG_GUARD_S
    ) -> Reply[pb.ComputeReply]:
        request = pb.ComputeRequest(
            task_id=task_id, subtask_id=subtask_id, subtask_params_json=subtask_params_json
        )
        return self._call("Compute", lambda stub: stub.Compute(request, timeout=timeout))

    def run_benchmark(self) -> Reply[pb.RunBenchmarkReply]:
        request = pb.RunBenchmarkRequest()
        return self._call("RunBenchmark", lambda stub: stub.RunBenchmark(request, timeout=HANG_GUARD_S))

    def shutdown(self) -> Reply[pb.ShutdownReply]:
        request = pb.ShutdownRequest()
        return self._call("Shutdown", lambda stub: stub.Shutdown(request, timeout=HANG_GUARD_S))


def stop(server: AppServer) -> int | None:
    """Shut a server down the protocol's way (Shutdown) and return its exit code; kill it if it lingers."""
    if not server.running:
        return server.wait_exit()
    if server.role == "provider":
        ProviderWire(server).shutdown()
    else:
        RequestorWire(server).shutdown()
    return server.wait_exit()


def copy_resources(resources: Sequence[str], requestor_task_dir: Path, provider_task_dir: Path) -> None:
    """Copy the files a subtask names from the requestor's subtask_inputs to the provider's."""
    target = provider_task_dir / SUBTASK_INPUTS
    target.mkdir(parents=True, exist_ok=True)
    for name in resources:
        shutil.copyfile(requestor_task_dir / SUBTASK_INPUTS / name, target / name)


def deliver(requestor_task_dir: Path, subtask_id: str, file_name: str, content: bytes) -> None:
    """Put a result where the node puts it before Verify: subtask_outputs/<subtask_id>/<file>, alone."""
    target = requestor_task_dir / SUBTASK_OUTPUTS / subtask_id
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / file_name).write_bytes(content)


class ProtocolMismatch(AssertionError):
    """An app's reply that the protocol (docs/protocol.md) does not allow."""


def expect(what: str, reply: Reply[Any], status: Status) -> bool:
    """Fail unless `reply` has `status` (errors need a readable message); True when the call succeeded."""
    problem = mismatch(what, reply, status)
    if problem is not None:
        raise ProtocolMismatch(problem)
    return status is Status.OK


def mismatch(what: str, reply: Reply[Any], status: Status) -> str | None:
    """Why `reply` is not what the protocol says (`status`, and a readable message for errors); or None."""
    if reply.status is not status:
        answered = f"{reply.status.name} {reply.details!r}"
        return f"{what}: the protocol says {status.name}, the app answered {answered}"
    if status is not Status.OK and not reply.details.strip():
        return f"{what}: {status.name} without a readable message"
    return None


def output_file(provider_task_dir: Path, output_filepath: str) -> Path:
    """The file a Compute reply names: a relative path to a file inside the provider's task dir."""
    relative = Path(output_filepath)
    root = provider_task_dir.resolve()
    output = (root / relative).resolve()
    if relative.is_absolute() or not output.is_relative_to(root) or not output.is_file():
        raise ProtocolMismatch(f"Compute returned {output_filepath!r}: not a file in the provider's task dir")
    return output
