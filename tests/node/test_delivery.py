"""A delivered result is the requestor's: it is verified even if its provider hangs up, never cancelled.

The window between a result's upload and its verdict is made wide on purpose: the requestor's app
server is frozen with SIGSTOP while Verify is pending, so the test can act inside that window without
any timing luck. The two faults that window used to hide:
- a heartbeat naming the subtask answered "cancelled" (the lease query only knew `assigned`), and the
  real provider then dropped its own upload;
- a provider hanging up cancelled the requestor's handler mid-Verify, leaving the subtask `delivered`
  forever, so its task could never finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from grpclib.exceptions import GRPCError, StreamTerminatedError

from protos import node_pb2 as npb

from .cluster import Cluster, NodeProcess, expected_result, wait_until
from .wire import ResultFile, honest_result

log = logging.getLogger(__name__)

TASK = {"input": "node-q2", "difficulty": 12, "subtasks": 1}


def child_pids(parent: int) -> dict[int, str]:
    """The direct children of `parent` (pid -> command line), read from /proc."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                children[int(stat.parent.name)] = cmdline
    return children


@contextlib.contextmanager
def frozen_app_server(requestor: NodeProcess) -> Iterator[None]:
    """SIGSTOP the requestor's app server (its Verify cannot answer) until the block ends."""
    (pid,) = [pid for pid, cmd in child_pids(requestor.process.pid).items() if " requestor " in cmd]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_result_under_verification_survives_a_heartbeat_and_a_hang_up(cluster: Cluster) -> None:
    requestor = cluster.requestor()
    provider = requestor.raw_provider("hangs-up")
    provider.join().value()
    control = requestor.control()
    # local: a hand-made wasm result could not claim the fuel its re-execution would measure
    task_id = control.submit("tutorialapp", "local", TASK).value().task_id
    (assignment,) = provider.request_work(wait_ms=30_000).value().assignments
    subtask_id = assignment.subtask_id
    result = ResultFile("result.json", honest_result(assignment.subtask_params_json))

    def state() -> str:
        (subtask,) = requestor.store.subtasks(task_id)
        return subtask.state

    async def deliver_then_hang_up() -> list[str]:
        async with provider.stub.SubmitResult.open(metadata=provider.metadata) as stream:
            await stream.send_message(npb.ResultPart(header=result.header(provider.provider_id, subtask_id)))
            await stream.send_message(npb.ResultPart(data=result.data), end=True)
            while state() != "delivered":
                await asyncio.sleep(0.02)
            beat = await provider.stub.Heartbeat(
                npb.HeartbeatRequest(provider_id=provider.provider_id, subtask_ids=[subtask_id]),
                metadata=provider.metadata,
            )
            with contextlib.suppress(GRPCError, StreamTerminatedError):
                await stream.cancel()
        return list(beat.cancelled_subtask_ids)

    with frozen_app_server(requestor):
        cancelled = provider.loop.run(deliver_then_hang_up(), "delivery, heartbeat and hang-up")
    assert cancelled == [], "a heartbeat cancelled a subtask whose result was being verified"
    wait_until(lambda: state() != "delivered", "the delivered result's verdict")
    assert state() == "accepted"
    assert requestor.wait_for_task(task_id).state == "finished"
    assert requestor.result(task_id) == expected_result("node-q2", 12)
    requestor.wait_for_log(f"subtask {subtask_id} accepted")
    provider.close()
    control.close()
    log.info("a provider hung up while its result was verified: the result was still accepted")
