"""Batching in the node (issue 17): the provider's queue beyond its capacity, submission pipelined with
compute, and the requestor's one NextSubtasks call per round and one VerifyBatch call per burst of
deliveries.

Everything real but the provider's compute runner, which wraps the honest local runner with a gate the
test opens: an in-process requestor served over loopback gRPC, the tutorialapp app server it starts, a
ProviderNode dialling it, the store read back. Waits are hang guards, never timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps.sdk.handlers import Subtask, VerifyResult
from apps.sdk.workdir import ProviderTaskDir
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import ComputeOutcome, ComputeRunner
from runtime.node.market import MAX_QUEUE
from runtime.node.provider import UNJUDGED_PER_SLOT, ProviderConfig, ProviderNode
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import RequestorServer, serve_requestor
from runtime.node.runners import builtin_whitelist, runners_for
from runtime.node.states import SubtaskState
from runtime.node.verification import VerificationConfig

from .cluster import TASKAPI, Cluster, Provider, expected_result, wait_until
from .queued_provider import QueueAlways
from .wire import Loop, RawProvider, ResultFile, honest_result

HOST = "127.0.0.1"
QUEUED_PROVIDER = Path(__file__).with_name("queued_provider.py")
GUARD_S = 90.0
"""Hang guard of every wait."""
QUICK = {"input": "node-batch", "difficulty": 12}
"""Its answer, nonce 571, lies in range 1 of 8 ranges (the first range a queue test's provider passes)."""
QUEUE_ALWAYS_MS = 600_000


class GatedRunner:
    """The honest local runner, each compute after the first `passes` waiting until the test opens the
    gate; records the subtasks it started and the most it ran at once. (A task's subtasks fill a provider's
    queue only once one of its results is in: `passes=1` gives the requestor that result.)"""

    def __init__(self, honest: ComputeRunner, passes: int = 0) -> None:
        self.env_id = honest.env_id
        self.honest = honest
        self.passes = passes
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.running = 0
        self.most_at_once = 0

    async def compute(
        self, assignment: npb.Assignment, task_dir: ProviderTaskDir, module: Path | None
    ) -> ComputeOutcome:
        self.started.append(assignment.subtask_id)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if len(self.started) > self.passes:
                await self.gate.wait()
            return await self.honest.compute(assignment, task_dir, module)
        finally:
            self.running -= 1

    async def benchmark(self) -> float:
        return 1.0

    async def close(self) -> None:
        await self.honest.close()


@dataclass
class Pair:
    node: RequestorNode
    server: RequestorServer
    port: int
    token: str
    provider: ProviderNode | None = None
    runner: GatedRunner | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def held_by(self, task_id: str, provider_id: str) -> list[str]:
        return [
            s.subtask_id
            for s in self.node.store.subtasks(task_id=task_id, states=(SubtaskState.ASSIGNED,))
            if s.provider_id == provider_id
        ]


async def until(condition: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), GUARD_S)
    except TimeoutError:
        raise AssertionError(f"hang: {what} did not happen within {GUARD_S:.0f} s") from None


@contextlib.asynccontextmanager
async def requestor(tmp_path: Path, **config: int) -> AsyncIterator[Pair]:
    """A requestor (re-execution off: the runner is the only compute) served on a free port. Its tasks fill
    providers' queues whatever their results' compute times (a loaded machine can take longer than the
    default's 100 ms over a local compute): when the queue is granted is test_scheduling_core's subject."""
    settings = RequestorConfig(
        verification=VerificationConfig(reexecute=False),
        reap_interval_s=0.1,
        queue_compute_ms=QUEUE_ALWAYS_MS,
        **config,
    )
    node = RequestorNode(tmp_path / "requestor", settings, app_manager=AppManager())
    await node.start()
    token = secrets.token_hex(16)
    server, port = await serve_requestor(node, HOST, 0, provider_token=token, control_token=token)
    pair = Pair(node, server, port, token)
    try:
        yield pair
    finally:
        for task in pair.tasks:
            task.cancel()
        await asyncio.gather(*pair.tasks, return_exceptions=True)
        server.close()
        await server.wait_closed()
        await node.stop()


def start_provider(
    pair: Pair, tmp_path: Path, capacity: int, queue: int, always: bool = True, passes: int = 0
) -> None:
    (honest,) = runners_for(["local"])
    runner = GatedRunner(honest, passes)
    config = ProviderConfig(
        HOST, pair.port, pair.token, tmp_path / "provider", capacity=capacity, queue=queue
    )
    provider = ProviderNode(config, [runner], builtin_whitelist())
    if always:
        provider.times = QueueAlways()
    pair.provider, pair.runner = provider, runner
    pair.tasks.append(asyncio.create_task(provider.run(asyncio.Event())))


def run(test: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(test, 4 * GUARD_S))


def test_a_provider_holds_its_queue_and_computes_no_more_than_its_capacity(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path) as pair:
            start_provider(pair, tmp_path, capacity=1, queue=2, passes=1)
            assert pair.provider is not None and pair.runner is not None
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 8}, 8)
            provider_id = pair.provider.provider_id
            await until(lambda: len(pair.held_by(task_id, provider_id)) == 3, "capacity 1 + queue 2 held")
            await asyncio.sleep(0.3)  # a RequestWork past capacity + queue would have been answered by now
            assert len(pair.held_by(task_id, provider_id)) == 3
            assert pair.node.store.subtask(pair.runner.started[1]) is not None
            assert len(pair.runner.started) == 2, "a queued assignment started before a slot freed"
            pair.runner.gate.set()
            status = await pair.node.wait_for_task(task_id)
            assert status.state == "finished", status.reason
            assert pair.runner.most_at_once == 1
            result = tmp_path / "requestor" / "outputs" / task_id / "result.json"
            assert json.loads(result.read_text()) == expected_result("node-batch", 12)

    run(scenario())


def test_an_old_provider_without_a_queue_holds_its_capacity_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path) as pair:
            start_provider(pair, tmp_path, capacity=2, queue=0)
            assert pair.provider is not None and pair.runner is not None
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 4}, 4)
            provider_id = pair.provider.provider_id
            await until(lambda: len(pair.held_by(task_id, provider_id)) == 2, "capacity 2 held")
            await asyncio.sleep(0.3)
            assert len(pair.held_by(task_id, provider_id)) == 2, "held past its capacity without a queue"
            pair.runner.gate.set()
            status = await pair.node.wait_for_task(task_id)
            assert status.state == "finished", status.reason

    run(scenario())


def test_a_queued_provider_asks_for_work_in_halves_of_its_queue(tmp_path: Path) -> None:
    """With its queue in use, a provider asks again only once half the queue is free, so each RequestWork
    (and the app call behind it) brings several assignments, not one per compute that ends."""

    async def scenario() -> None:
        async with requestor(tmp_path) as pair:
            asked: list[int] = []
            request_work = pair.node.request_work

            async def recording(provider_id: str, slots: int, wait_ms: int) -> list[npb.Assignment]:
                asked.append(slots)
                return await request_work(provider_id, slots, wait_ms)

            pair.node.request_work = recording  # type: ignore[method-assign]
            start_provider(pair, tmp_path, capacity=1, queue=8, passes=1)
            assert pair.provider is not None and pair.runner is not None
            provider_id = pair.provider.provider_id
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 16}, 16)
            # 8 or 9: the ask that fills the queue may go out before range 0's result frees its place
            await until(lambda: len(pair.held_by(task_id, provider_id)) >= 8, "the queue filled")
            asked.clear()
            pair.runner.gate.set()  # computes end one by one; 5 or 6 closed ranges are still pending
            status = await pair.node.wait_for_task(task_id)
            assert status.state == "finished", status.reason
            assert asked, "the provider never asked again"
            assert min(asked) >= 4, f"asked for fewer than half the queue: {asked}"

    run(scenario())


def test_a_queued_subtask_cancelled_by_heartbeat_is_dropped_unstarted(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path, heartbeat_ms=100) as pair:
            start_provider(pair, tmp_path, capacity=1, queue=2, passes=1)
            assert pair.provider is not None and pair.runner is not None
            provider = pair.provider
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 8}, 8)
            await until(lambda: len(pair.held_by(task_id, provider.provider_id)) == 3, "3 held")
            queued = [s for s in pair.held_by(task_id, provider.provider_id) if s not in pair.runner.started]
            assert len(queued) == 2
            await pair.node.abort_task(task_id)
            await until(lambda: not provider._running, "the provider dropping what it held")
            pair.runner.gate.set()
            await asyncio.sleep(0.3)
            assert not set(queued) & set(pair.runner.started), "a cancelled queued subtask was computed"
            for subtask_id in queued:
                row = pair.node.store.subtask(subtask_id)
                assert row is not None and row.state is SubtaskState.ABORTED

    run(scenario())


def test_queued_leases_are_renewed_by_heartbeat(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path, lease_ms=600, heartbeat_ms=100) as pair:
            start_provider(pair, tmp_path, capacity=1, queue=2, passes=1)
            assert pair.provider is not None and pair.runner is not None
            provider_id = pair.provider.provider_id
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 8}, 8)
            await until(lambda: len(pair.held_by(task_id, provider_id)) == 3, "3 held")
            await asyncio.sleep(2.0)  # more than three leases: only heartbeats keep the queued ones
            assert len(pair.held_by(task_id, provider_id)) == 3
            assert pair.node.store.count_by_state(task_id) == {"accepted": 1, "assigned": 3}
            await pair.node.abort_task(task_id)

    run(scenario())


def hold_verify(node: RequestorNode, task_id: str) -> tuple[asyncio.Event, list[list[str]]]:
    """Hold the task's app verification until the returned event is set; record each VerifyBatch call."""
    client = node._active[task_id].client
    real = client.verify_batch
    release = asyncio.Event()
    calls: list[list[str]] = []

    async def held(task: str, subtask_ids: Sequence[str]) -> list[tuple[VerifyResult, str, dict[str, str]]]:
        calls.append(list(subtask_ids))
        await release.wait()
        return await real(task, subtask_ids)

    setattr(client, "verify_batch", held)  # noqa: B010 (a spy in place of the method)
    return release, calls


def test_a_compute_slot_frees_when_its_compute_ends_and_unjudged_results_are_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path) as pair:
            subtasks = UNJUDGED_PER_SLOT + 3
            params = {**QUICK, "difficulty": 16, "subtasks": subtasks}
            task_id = await pair.node.submit_task("tutorialapp", "local", params, subtasks)
            release, _ = hold_verify(pair.node, task_id)
            start_provider(pair, tmp_path, capacity=1, queue=0, always=False)
            runner = pair.runner
            assert runner is not None
            runner.gate.set()
            # Verdicts held: each slot computes on past results awaiting theirs, up to the bound.
            await until(lambda: len(runner.started) == UNJUDGED_PER_SLOT + 1, "computes past verdicts")
            await asyncio.sleep(0.5)
            assert len(runner.started) == UNJUDGED_PER_SLOT + 1, "more results held than the bound"
            assert runner.most_at_once == 1
            release.set()
            status = await pair.node.wait_for_task(task_id)
            assert status.state == "finished", status.reason

    run(scenario())


def test_a_round_asks_the_app_once_and_concurrent_deliveries_are_verified_together(tmp_path: Path) -> None:
    loop = Loop()
    served = requestor(tmp_path)
    pair = loop.run(served.__aenter__(), "requestor start")
    provider = RawProvider(loop, HOST, pair.port, pair.token, "batching")
    try:
        params = {**QUICK, "subtasks": 5}  # 4 closed ranges and the open one
        task_id = loop.run(pair.node.submit_task("tutorialapp", "local", params, 5), "submit")
        client = pair.node._active[task_id].client
        asks: list[list[tuple[str, str]]] = []
        real_next = client.next_subtasks

        async def counted(task: str, calls: Sequence[tuple[str, str]]) -> list[Subtask | None]:
            asks.append(list(calls))
            return await real_next(task, calls)

        setattr(client, "next_subtasks", counted)  # noqa: B010 (a spy in place of the method)
        provider.join(envs=["local"], capacity=4).value()
        assignments = provider.request_work(slots=4).value().assignments
        assert len(assignments) == 4
        assert [len(call) for call in asks] == [4], "one NextSubtasks call for the round's 4 slots"
        assert [sid for sid, _ in asks[0]] == [a.subtask_id for a in assignments]

        release, verify_calls = hold_verify(pair.node, task_id)

        async def deliver_all() -> list[npb.SubmitReply]:
            first = asyncio.ensure_future(
                provider._submit(assignments[0].subtask_id, result_of(assignments[0]))
            )
            while not verify_calls:
                await asyncio.sleep(0.01)
            rest = [
                asyncio.ensure_future(provider._submit(a.subtask_id, result_of(a))) for a in assignments[1:]
            ]
            while len(pair.node._verify_batches._waiting.get(task_id, [])) < 3:
                await asyncio.sleep(0.01)
            release.set()
            return list(await asyncio.gather(first, *rest))

        replies = loop.run(deliver_all(), "deliveries")
        assert [reply.verdict for reply in replies] == ["accepted"] * 4
        assert verify_calls == [
            [assignments[0].subtask_id],
            [a.subtask_id for a in assignments[1:]],
        ], "the deliveries that came while a Verify ran went in one VerifyBatch"
    finally:
        provider.close()
        loop.run(served.__aexit__(None, None, None), "requestor stop")
        loop.close()


def result_of(assignment: npb.Assignment) -> ResultFile:
    return ResultFile("result.json", honest_result(assignment.subtask_params_json))


def test_a_provider_killed_with_a_queue_loses_it_after_the_lease_and_another_finishes(
    cluster: Cluster,
) -> None:
    # The doomed provider computes range 0 (its result lets the task fill queues), then holds ranges 1-3
    # (answer in range 3 of 6), computing none of them until it is killed.
    params = {"input": "node-fault-3", "difficulty": 22, "subtasks": 6}
    requestor = cluster.requestor(lease_ms=1500, options=("--queue-compute-ms", str(QUEUE_ALWAYS_MS)))
    data_dir = cluster.root / "doomed"
    command = [sys.executable, str(QUEUED_PROVIDER), requestor.address, "--token", requestor.token]
    command += ["--capacity", "1", "--queue", "2", "--stall-after", "1", "--data-dir", str(data_dir)]
    doomed = Provider(cluster, "doomed", command, data_dir)
    cluster.processes.append(doomed)
    task_id = requestor.submit("tutorialapp", "local", params)

    def held() -> list[str]:
        return [
            s.subtask_id
            for s in requestor.store.subtasks(task_id)
            if s.state == "assigned" and s.provider_id == doomed.provider_id
        ]

    wait_until(lambda: len(held()) == 3, "the provider holding capacity 1 + queue 2")
    lost = held()
    doomed.kill9()
    rescuer = cluster.provider("rescuer", requestor, capacity=1)
    status = requestor.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    assert requestor.result(task_id) == expected_result("node-fault-3", 22)
    states = {s.subtask_id: s.state for s in requestor.store.subtasks(task_id)}
    assert [states[subtask_id] for subtask_id in lost] == ["expired"] * 3, "queued work not given back"
    accepted = [s for s in requestor.store.subtasks(task_id) if s.state == "accepted"]
    by_rescuer = [s for s in accepted if s.provider_id == rescuer.provider_id]
    assert len(accepted) == len(by_rescuer) + 1 and by_rescuer, "range 0 by the doomed one, the rest rescued"


@pytest.mark.parametrize("queue", [0, 5])
def test_provider_join_offers_the_queue_it_is_given(cluster: Cluster, queue: int) -> None:
    requestor = cluster.requestor()
    provider = cluster.provider("queued", requestor, options=("--queue", str(queue)))
    wait_until(lambda: provider.provider_id in requestor.store.offers(), "the provider joining")
    offer = requestor.store.offers()[provider.provider_id]
    assert (offer["capacity"], offer["queue"]) == (1, queue)


def test_provider_join_refuses_a_queue_past_the_protocol_limit(tmp_path: Path) -> None:
    command = [TASKAPI, "provider", "join", "127.0.0.1:9", "--token", "t", "--queue", str(MAX_QUEUE + 1)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 2
    assert "--queue" in run.stderr and f"{MAX_QUEUE + 1} is not in the range 0<=x<={MAX_QUEUE}" in run.stderr
