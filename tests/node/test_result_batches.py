"""Several results in one SubmitResults call (issue 17, batching on the wire): one verdict per result, a bad
result refused on its own, one call for the results a provider has ready, the fallback to one SubmitResult
per result against a requestor without SubmitResults, and resending only the results whose verdict never
came.

Real gRPC over loopback throughout: an in-process requestor node with its tutorialapp app server, spoken to
by hand (RawProvider) or by a ProviderNode; the resend test scripts the requestor's side of the call. Waits
are hang guards, never timings.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality, Handler, Status
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from apps.sdk.process import free_port
from protos import node_pb2 as npb
from protos.node_grpc import RequestorStub
from runtime.node.requestor_service import REQUESTOR_PREFIX
from runtime.node.resources import HashedFile
from runtime.node.result_delivery import ResultDelivery
from runtime.node.states import SubtaskState

from .test_node_batching import QUICK, Pair, hold_verify, requestor, result_of, run, start_provider, until
from .wire import Loop, RawProvider, ResultFile

HOST = "127.0.0.1"
SUBMIT_RESULTS = REQUESTOR_PREFIX + "SubmitResults"


def states(pair: Pair, *subtask_ids: str) -> list[SubtaskState]:
    rows = [pair.node.store.subtask(subtask_id) for subtask_id in subtask_ids]
    return [row.state for row in rows if row is not None]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Loop, Pair]]:
    """A requestor served on a loop that raw providers share."""
    loop = Loop()
    context = requestor(tmp_path)
    pair = loop.run(context.__aenter__(), "requestor start")
    try:
        yield loop, pair
    finally:
        loop.run(context.__aexit__(None, None, None), "requestor stop")
        loop.close()


def submit(loop: Loop, pair: Pair, subtasks: int) -> str:
    params = {**QUICK, "subtasks": subtasks}
    return loop.run(pair.node.submit_task("tutorialapp", "local", params, subtasks), "submit")


def test_several_results_in_one_call_get_a_verdict_each(served: tuple[Loop, Pair]) -> None:
    loop, pair = served
    provider = RawProvider(loop, HOST, pair.port, pair.token, "batcher")
    try:
        submit(loop, pair, 5)  # 4 closed ranges and the open one
        provider.join(capacity=4).value()
        assignments = provider.request_work(slots=4).value().assignments
        assert len(assignments) == 4

        verdicts = provider.submit_results([(a.subtask_id, result_of(a)) for a in assignments]).value()

        ids = [a.subtask_id for a in assignments]
        assert sorted(v.subtask_id for v in verdicts) == sorted(ids)
        assert {(v.status, v.verdict) for v in verdicts} == {(0, "accepted")}, verdicts
        assert states(pair, *ids) == [SubtaskState.ACCEPTED] * 4
    finally:
        provider.close()


def test_a_bad_result_in_a_batch_is_refused_alone_and_the_others_are_judged(
    served: tuple[Loop, Pair],
) -> None:
    loop, pair = served
    provider = RawProvider(loop, HOST, pair.port, pair.token, "mixed")
    other = RawProvider(loop, HOST, pair.port, pair.token, "other")
    try:
        submit(loop, pair, 6)
        other.join().value()
        (others,) = other.request_work(slots=1).value().assignments
        provider.join(capacity=4).value()
        first, digest, name, last = provider.request_work(slots=4).value().assignments
        unknown = "no-such-subtask"
        batch = [
            (first.subtask_id, result_of(first)),
            (digest.subtask_id, ResultFile("result.json", b"{}", announced_sha256="0" * 64)),
            (unknown, ResultFile("result.json", b"{}")),
            (others.subtask_id, result_of(others)),
            (name.subtask_id, ResultFile("../result.json", b"{}")),
            (last.subtask_id, result_of(last)),
        ]

        verdicts = {v.subtask_id: v for v in provider.submit_results(batch).value()}

        assert len(verdicts) == len(batch)
        for judged in (first, last):
            assert (verdicts[judged.subtask_id].status, verdicts[judged.subtask_id].verdict) == (
                0,
                "accepted",
            )
        assert verdicts[digest.subtask_id].verdict == "rejected"
        assert verdicts[digest.subtask_id].reason == "result sha256 does not match the announced digest"
        assert verdicts[name.subtask_id].verdict == "rejected"
        assert "result file name" in verdicts[name.subtask_id].reason
        for refused in (unknown, others.subtask_id):
            assert verdicts[refused].status == Status.NOT_FOUND.value, verdicts[refused]
            assert verdicts[refused].verdict == ""
            assert f"subtask {refused!r} is not assigned to provider" in verdicts[refused].reason
        assert states(pair, first.subtask_id, digest.subtask_id, name.subtask_id, last.subtask_id) == [
            SubtaskState.ACCEPTED,
            SubtaskState.FAILED,
            SubtaskState.FAILED,
            SubtaskState.ACCEPTED,
        ]
        assert states(pair, others.subtask_id) == [SubtaskState.ASSIGNED], "another's subtask was touched"
    finally:
        provider.close()
        other.close()


async def _raw_call(provider: RawProvider, parts: list[npb.ResultPart]) -> list[npb.SubmitVerdict]:
    async with provider.stub.SubmitResults.open(metadata=provider.metadata) as stream:
        for part in parts:
            await stream.send_message(part)
        await stream.end()
        return [verdict async for verdict in stream]


@pytest.mark.parametrize("spoiler", ["data first", "data past the announced size", "another provider's id"])
def test_a_call_that_spoils_the_stream_fails_whole(served: tuple[Loop, Pair], spoiler: str) -> None:
    loop, pair = served
    provider = RawProvider(loop, HOST, pair.port, pair.token, "spoiler")
    try:
        submit(loop, pair, 2)
        provider.join().value()
        (assignment,) = provider.request_work().value().assignments
        result = result_of(assignment)
        header = result.header(provider.provider_id, assignment.subtask_id)
        if spoiler == "another provider's id":
            header.provider_id = "0" * 32
        parts = [npb.ResultPart(header=header), npb.ResultPart(data=result.data)]
        if spoiler == "data first":
            parts.reverse()
        elif spoiler == "data past the announced size":
            parts.append(npb.ResultPart(data=b"more"))

        reply = loop.call(_raw_call(provider, parts), "SubmitResults")

        expected = {
            "data first": (Status.INVALID_ARGUMENT, "SubmitResults must start with a header"),
            "data past the announced size": (
                Status.INVALID_ARGUMENT,
                f"data past the {header.size} bytes announced for subtask {assignment.subtask_id!r}",
            ),
            "another provider's id": (Status.PERMISSION_DENIED, "provider_id in the request is not the id"),
        }[spoiler]
        assert reply.status is expected[0], reply
        assert expected[1] in reply.details, reply
    finally:
        provider.close()


def count_calls(server: Server) -> Counter[str]:
    """The node-protocol calls that reach the server's handlers, by method name."""
    calls: Counter[str] = Counter()

    async def count(event: RecvRequest) -> None:
        calls[event.method_name.rsplit("/", 1)[-1]] += 1

    listen(server, RecvRequest, count)
    return calls


def test_a_provider_sends_the_results_it_has_ready_in_one_call(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path) as pair:
            calls = count_calls(pair.server)
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 5}, 5)
            release, _ = hold_verify(pair.node, task_id)
            start_provider(pair, tmp_path, capacity=4, queue=0)
            assert pair.runner is not None
            pair.runner.gate.set()

            def delivered() -> int:
                return pair.node.store.count_by_state(task_id).get("delivered", 0)

            await until(lambda: delivered() == 4, "4 results delivered while their verdicts are held")
            assert calls["SubmitResults"] == 1, (
                "the results that became ready meanwhile went in the open call"
            )
            release.set()
            status = await pair.node.wait_for_task(task_id)

            assert status.state == "finished", status.reason
            assert status.subtasks_by_state["accepted"] >= 4
            assert calls["SubmitResults"] <= 2 and calls["SubmitResult"] == 0, calls

    run(scenario())


def test_a_requestor_without_submit_results_gets_one_submit_result_per_result(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with requestor(tmp_path) as pair:
            calls = count_calls(pair.server)
            refused: list[str] = []

            async def as_before_submit_results(stream: Stream[Any, Any]) -> None:
                refused.append("SubmitResults")
                raise GRPCError(Status.UNIMPLEMENTED, "Method not found")

            mapping = pair.server._mapping  # a requestor from before SubmitResults
            mapping[SUBMIT_RESULTS] = mapping[SUBMIT_RESULTS]._replace(func=as_before_submit_results)
            task_id = await pair.node.submit_task("tutorialapp", "local", {**QUICK, "subtasks": 6}, 6)
            start_provider(pair, tmp_path, capacity=2, queue=0)
            assert pair.runner is not None
            pair.runner.gate.set()
            status = await pair.node.wait_for_task(task_id)

            assert status.state == "finished", status.reason
            assert refused == ["SubmitResults"], "the provider asked once and remembered the answer"
            assert dict(status.subtasks_by_state) == {"accepted": calls["SubmitResult"]}

    run(scenario())


class ScriptedResults:
    """The requestor's side of SubmitResults, scripted: the n-th call reads `calls[n]` results, answers
    with its verdicts (status, subtask id) and ends with its error, if any, once `heard` says the provider
    took those verdicts (a call ended early loses what it had sent and the provider had not read)."""

    def __init__(
        self,
        calls: list[tuple[int, list[tuple[Status, str]], GRPCError | None]],
        heard: Callable[[str], bool],
    ) -> None:
        self.calls = calls
        self.heard = heard
        self.carried: list[list[str]] = []

    async def submit_results(self, stream: Stream[npb.ResultPart, npb.SubmitVerdict]) -> None:
        results, answers, end = self.calls[len(self.carried)]
        carried: list[str] = []
        self.carried.append(carried)
        while len(carried) < results:
            part = await stream.recv_message()
            assert part is not None and part.WhichOneof("part") == "header"
            carried.append(part.header.subtask_id)
            received = 0
            while received < part.header.size:
                data = await stream.recv_message()
                assert data is not None
                received += len(data.data)
        for status, subtask_id in answers:
            verdict = "accepted" if status is Status.OK else ""
            await stream.send_message(
                npb.SubmitVerdict(subtask_id=subtask_id, status=status.value, verdict=verdict)
            )
        if end is not None:
            await until(lambda: all(self.heard(subtask_id) for _, subtask_id in answers), "verdicts heard")
            raise end
        assert await stream.recv_message() is None, "the provider sent more than the script expects"

    def __mapping__(self) -> dict[str, Handler]:
        return {
            SUBMIT_RESULTS: Handler(
                self.submit_results, Cardinality.STREAM_STREAM, npb.ResultPart, npb.SubmitVerdict
            )
        }


def result_files(tmp_path: Path, names: list[str]) -> list[HashedFile]:
    files = []
    for name in names:
        path = tmp_path / name
        path.write_bytes(name.encode() * 1000)
        files.append(HashedFile.open(tmp_path, path))
    return files


def test_only_the_results_whose_verdict_never_came_are_sent_again(tmp_path: Path) -> None:
    """Call 1 judges a and dies (the requestor restarting); call 2 carries b and c, and b is not taken now
    (UNAVAILABLE); call 3 carries b alone."""

    async def scenario() -> None:
        files = result_files(tmp_path, ["a", "b", "c"])
        headers = [
            npb.ResultHeader(subtask_id=f.name, file_name=f.name, size=f.size, sha256=f.sha256) for f in files
        ]
        settled: dict[str, asyncio.Task[npb.SubmitVerdict | None]] = {}
        script = ScriptedResults(
            [
                (3, [(Status.OK, "a")], GRPCError(Status.UNAVAILABLE, "the requestor is shutting down")),
                (2, [(Status.UNAVAILABLE, "b"), (Status.OK, "c")], None),
                (1, [(Status.OK, "b")], None),
            ],
            lambda subtask_id: settled[subtask_id].done(),
        )
        server = Server([script])
        await server.start(HOST, 0)
        assert isinstance(server._server, asyncio.Server)
        channel = Channel(HOST, server._server.sockets[0].getsockname()[1])
        delivery = ResultDelivery(RequestorStub(channel), {})
        try:
            for header, result in zip(headers, files, strict=True):
                settled[header.subtask_id] = asyncio.create_task(delivery.deliver(header, result, 2**62))
            verdicts = await asyncio.gather(*settled.values())

            assert [(v.subtask_id, v.verdict) for v in verdicts if v is not None] == [
                ("a", "accepted"),
                ("b", "accepted"),
                ("c", "accepted"),
            ]
            assert script.carried == [["a", "b", "c"], ["b", "c"], ["b"]]
            assert delivery.calls == 3
            assert all(f.handle.closed for f in files), "a result file was left open"
        finally:
            await delivery.close()
            channel.close()
            server.close()
            await server.wait_closed()

    run(scenario())


def test_results_wait_out_a_backoff_while_the_requestor_is_down(tmp_path: Path) -> None:
    """Nothing listens (the requestor killed): each failed call is followed by a backoff, not tried again at
    once (it was: thousands of connection attempts a second until the requestor came back)."""

    async def scenario() -> None:
        (result,) = result_files(tmp_path, ["a"])
        header = npb.ResultHeader(subtask_id="a", file_name="a", size=result.size, sha256=result.sha256)
        channel = Channel(HOST, free_port(HOST))
        delivery = ResultDelivery(RequestorStub(channel), {})
        try:
            sending = asyncio.create_task(delivery.deliver(header, result, 2**62))
            await asyncio.sleep(1.5)
            assert not sending.done()
            assert 1 <= delivery.calls <= 5, f"{delivery.calls} calls in 1.5 s to a requestor that is down"
            sending.cancel()
        finally:
            await delivery.close()
            channel.close()

    run(scenario())
