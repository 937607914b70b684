"""Per-provider identity (issue 18, finding 5): an impostor holding the shared provider token cannot act as
another provider; signed calls cannot be replayed or kept past their freshness window; offers are
bounded; a provider never holds more leases than its capacity.

One in-process requestor (tutorialapp on `local`) served on a real loopback port; providers speak the
node protocol by hand (tests/node/wire.py), each signing with the key its name derives. Every case
asserts the named refusal and that the requestor still serves afterwards; the victim's offer, lease and
bill stay as they were.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from multidict import MultiDict

from protos import node_pb2 as npb
from protos.node_grpc import RequestorStub
from runtime.node.identity import (
    ID_FILE,
    KEY_FILE,
    KEY_HEADER,
    SIGNATURE_HEADER,
    WINDOW_MS,
    ProviderKey,
    SignedCalls,
    provider_id_of,
    sign_calls,
    signed_metadata,
)
from runtime.node.market import MAX_CAPACITY, MAX_QUEUE
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import RequestorServer, bearer, serve_requestor
from tests.node.wire import Control, Loop, RawProvider, Reply, ResultFile, honest_result, named_key

HOST = "127.0.0.1"
PROVIDER_TOKEN = "identity-provider-token"
CONTROL_TOKEN = "identity-control-token"
VICTIM_PRICE = 0.5
CPU_SECONDS = 0.001  # what a ResultFile header reports (wire.py): 1_000_000 cpu-ns
HEARTBEAT = "/taskapi.node.Requestor/Heartbeat"


@dataclass
class Served:
    loop: Loop
    node: RequestorNode
    server: RequestorServer
    port: int
    control: Control
    names: Iterator[int]

    def provider(self, role: str, *, claims: str | None = None) -> RawProvider:
        """A provider with a fresh key (a name no other case uses), naming `claims` as its id if given."""
        name = f"{role}-{next(self.names)}"
        return RawProvider(self.loop, HOST, self.port, PROVIDER_TOKEN, name, claims=claims)

    def submit(self, subtasks: int = 1) -> str:
        params = {"input": "identity", "difficulty": 8, "subtasks": subtasks}
        return self.control.submit("tutorialapp", "local", params).value().task_id

    def offer(self, provider_id: str) -> dict[str, object] | None:
        return self.node.store.provider_offer(provider_id)

    def assert_serving(self) -> None:
        """The requestor still answers a provider that did nothing wrong."""
        bystander = self.provider("bystander")
        try:
            assert bystander.join().status is Status.OK
            assert bystander.leave().status is Status.OK
        finally:
            bystander.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    loop = Loop()
    config = RequestorConfig(lease_ms=600_000, reap_interval_s=3600)
    node = RequestorNode(tmp_path_factory.mktemp("identity") / "requestor", config)
    loop.run(node.start(), "requestor start")
    server, port = loop.run(
        serve_requestor(node, HOST, 0, provider_token=PROVIDER_TOKEN, control_token=CONTROL_TOKEN), "serve"
    )
    control = Control(loop, HOST, port, CONTROL_TOKEN)
    try:
        yield Served(loop, node, server, port, control, itertools.count())
    finally:
        control.close()
        server.close()
        loop.run(server.wait_closed(), "server close")
        loop.run(node.stop(), "requestor stop")
        loop.close()


@pytest.fixture
def task(served: Served) -> Iterator[str]:
    """A one-subtask task, aborted afterwards so it offers no work to later cases."""
    task_id = served.submit()
    try:
        yield task_id
    finally:
        served.control.abort(task_id)


# An impostor: its own key, the shared token, and the victim's id in every message.

IMPOSTURES: dict[str, Callable[[RawProvider, str], Reply[Any]]] = {
    "Join (rewrite the victim's price)": lambda impostor, _: impostor.join(price=1e12, capacity=64),
    "RequestWork": lambda impostor, _: impostor.request_work(slots=4),
    "Heartbeat": lambda impostor, subtask_id: impostor.heartbeat([subtask_id]),
    "SubmitResult": lambda impostor, subtask_id: impostor.submit(
        subtask_id, ResultFile("result.json", b'{"nonce": 1}')
    ),
    "SubmitResults": lambda impostor, subtask_id: impostor.submit_results(
        [(subtask_id, ResultFile("result.json", b'{"nonce": 1}'))]
    ),
    "ReportFailure": lambda impostor, subtask_id: impostor.report_failure(subtask_id, "refused: impostor"),
    "Leave (take the victim's work back)": lambda impostor, _: impostor.leave(),
}


@pytest.mark.parametrize("call", IMPOSTURES)
def test_an_impostor_with_the_token_cannot_act_as_another_provider(
    served: Served, task: str, call: str
) -> None:
    victim = served.provider("victim")
    impostor = served.provider("impostor", claims=victim.provider_id)
    try:
        victim.join(price=VICTIM_PRICE).value()
        (assignment,) = victim.request_work().value().assignments

        reply = IMPOSTURES[call](impostor, assignment.subtask_id)

        assert reply.status is Status.PERMISSION_DENIED, reply
        assert "not the id of the key that signed the call" in reply.details
        offer = served.offer(victim.provider_id)
        assert offer is not None and offer["price"] == VICTIM_PRICE and offer["capacity"] == 1
        lease = served.node.store.subtask(assignment.subtask_id)
        assert lease is not None and (lease.state, lease.provider_id) == ("assigned", victim.provider_id)
        assert served.offer(impostor.key.provider_id) is None, "the impostor joined under its own id"
        # The victim's work and bill are its own: its result is taken and billed at its price.
        result = ResultFile("result.json", honest_result(assignment.subtask_params_json))
        assert victim.submit(assignment.subtask_id, result).value().verdict == "accepted"
        (bill,) = served.control.status(task).value().bills
        assert bill.provider_id == victim.provider_id
        assert bill.cost == pytest.approx(CPU_SECONDS * VICTIM_PRICE)
        served.assert_serving()
    finally:
        victim.close()
        impostor.close()


# Signed metadata that is not the caller's own, fresh, once.


async def _send(channel: Channel, metadata: dict[str, str | bytes], method: str) -> object:
    stub = RequestorStub(channel)
    if method == HEARTBEAT:
        return await stub.Heartbeat(npb.HeartbeatRequest(), metadata=metadata)
    return await stub.RequestWork(npb.WorkRequest(slots=1, wait_ms=0), metadata=metadata)


def _call_with(
    served: Served, metadata: dict[str, str | bytes], method: str = HEARTBEAT, channel: Channel | None = None
) -> Reply[Any]:
    """One call carrying exactly `metadata` (nothing signs it on the way), on `channel` or a new one."""
    own = channel or served.loop.channel(HOST, served.port)
    try:
        return served.loop.call(_send(own, metadata, method), method)
    finally:
        if channel is None:
            own.close()


def _signed(key: ProviderKey, method: str = HEARTBEAT, token: str = PROVIDER_TOKEN) -> dict[str, str | bytes]:
    now_ms = int(time.time() * 1000)
    return {**bearer(PROVIDER_TOKEN), **signed_metadata(key, method, f"Bearer {token}", now_ms)}


def _forged(case: str, own: ProviderKey, victim: ProviderKey) -> dict[str, str | bytes]:
    if case == "unsigned (the token alone)":
        return dict(bearer(PROVIDER_TOKEN))
    if case == "the victim's public key, the impostor's signature":
        return {**_signed(own), KEY_HEADER: victim.public_bytes}
    if case == "a signature made for another method":
        return _signed(own, method="/taskapi.node.Requestor/Join")
    if case == "a signature made with another token":
        return _signed(own, token="some-other-requestor's-token")
    signed = _signed(own)
    signature = signed[SIGNATURE_HEADER]
    assert isinstance(signature, bytes)
    if case == "a truncated signature":
        return {**signed, SIGNATURE_HEADER: signature[:63]}
    assert case == "a flipped signature bit"
    return {**signed, SIGNATURE_HEADER: bytes([signature[0] ^ 1]) + signature[1:]}


@pytest.mark.parametrize(
    "case",
    [
        "unsigned (the token alone)",
        "the victim's public key, the impostor's signature",
        "a signature made for another method",
        "a signature made with another token",
        "a truncated signature",
        "a flipped signature bit",
    ],
)
def test_a_call_not_signed_by_the_key_it_carries_is_refused(served: Served, case: str) -> None:
    victim = served.provider("victim")
    try:
        victim.join().value()
        own = named_key(f"forger-{case}")

        reply = _call_with(served, _forged(case, own, victim.key))

        assert reply.status is Status.UNAUTHENTICATED, reply
        assert "signature" in reply.details or "taskapi-key-bin" in reply.details, reply
        served.assert_serving()
    finally:
        victim.close()


UNSIGNED_CALLS: dict[str, Callable[[RequestorStub, dict[str, str]], Any]] = {
    "Join": lambda stub, token: stub.Join(npb.JoinRequest(offer=npb.Offer(capacity=1)), metadata=token),
    "RequestWork": lambda stub, token: stub.RequestWork(npb.WorkRequest(slots=1), metadata=token),
    "Heartbeat": lambda stub, token: stub.Heartbeat(npb.HeartbeatRequest(), metadata=token),
    "FetchResource": lambda stub, token: stub.FetchResource(
        npb.FetchRequest(sha256="0" * 64), metadata=token
    ),
    "SubmitResult": lambda stub, token: stub.SubmitResult(
        [npb.ResultPart(header=npb.ResultHeader(subtask_id="x"))], metadata=token
    ),
    "SubmitResults": lambda stub, token: stub.SubmitResults(
        [npb.ResultPart(header=npb.ResultHeader(subtask_id="x"))], metadata=token
    ),
    "ReportFailure": lambda stub, token: stub.ReportFailure(
        npb.FailureReport(subtask_id="x"), metadata=token
    ),
    "Leave": lambda stub, token: stub.Leave(npb.LeaveRequest(), metadata=token),
}


@pytest.mark.parametrize("call", UNSIGNED_CALLS)
def test_every_node_protocol_call_needs_a_signature_besides_the_token(served: Served, call: str) -> None:
    channel = served.loop.channel(HOST, served.port)
    try:
        reply = served.loop.call(UNSIGNED_CALLS[call](RequestorStub(channel), bearer(PROVIDER_TOKEN)), call)
    finally:
        channel.close()

    assert reply.status is Status.UNAUTHENTICATED, reply
    assert "exactly one taskapi-key-bin" in reply.details, reply
    served.assert_serving()


@pytest.mark.parametrize("method", [HEARTBEAT, "/taskapi.node.Requestor/RequestWork"])
@pytest.mark.parametrize("connection", ["the original call's", "a new one (an eavesdropper's)"])
def test_replayed_signed_metadata_is_refused(served: Served, method: str, connection: str) -> None:
    provider = served.provider("replayed")
    original = served.loop.channel(HOST, served.port)
    try:
        provider.join().value()
        captured = _signed(provider.key, method)
        assert _call_with(served, captured, method, original).status is Status.OK

        again = original if connection == "the original call's" else None
        reply = _call_with(served, captured, method, again)

        assert reply.status is Status.UNAUTHENTICATED, reply
        assert "replayed" in reply.details
        assert provider.heartbeat([]).status is Status.OK, "the provider's own fresh calls still pass"
    finally:
        original.close()
        provider.close()


@pytest.mark.parametrize(
    ("offset_s", "accepted"),
    [
        (-3600.0, False),
        (3600.0, False),
        (-(WINDOW_MS / 1000 + 5), False),
        (WINDOW_MS / 1000 + 5, False),
        (-(WINDOW_MS / 1000 - 5), True),
    ],
)
def test_a_signed_call_outside_the_freshness_window_is_refused(
    served: Served, offset_s: float, accepted: bool
) -> None:
    provider = served.provider("skewed")
    try:
        provider.join().value()
        skewed = served.loop.channel(HOST, served.port)
        sign_calls(skewed, provider.key, clock=lambda: time.time() + offset_s)
        try:
            reply = served.loop.call(
                RequestorStub(skewed).Heartbeat(npb.HeartbeatRequest(), metadata=provider.metadata), "skewed"
            )
        finally:
            skewed.close()
        if accepted:
            assert reply.status is Status.OK, reply
        else:
            assert reply.status is Status.UNAUTHENTICATED, reply
            assert "clock" in reply.details, reply
        served.assert_serving()
    finally:
        provider.close()


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _verify(calls: SignedCalls, key: ProviderKey, at_s: float) -> MultiDict[str | bytes]:
    """Sign a Heartbeat made at `at_s`, have `calls` accept it; the metadata, for replaying."""
    metadata: MultiDict[str | bytes] = MultiDict(
        signed_metadata(key, HEARTBEAT, "Bearer t", int(at_s * 1000))
    )
    metadata["authorization"] = "Bearer t"
    assert calls.verify(HEARTBEAT, metadata) == key.provider_id
    return metadata


def _refusal(calls: SignedCalls, metadata: MultiDict[str | bytes]) -> GRPCError:
    with pytest.raises(GRPCError) as refused:
        calls.verify(HEARTBEAT, metadata)
    return refused.value


def test_the_replay_cache_forgets_a_nonce_only_once_it_is_stale_and_is_bounded() -> None:
    clock = FakeClock()
    calls = SignedCalls(window_ms=60_000, max_remembered=3, clock=clock)
    key = named_key("cache")
    first = _verify(calls, key, clock.now + 60)  # signed by a clock a full window ahead

    clock.now += 119  # its time is still fresh: the nonce must still be known
    refused = _refusal(calls, first)
    assert refused.status is Status.UNAUTHENTICATED and "replayed" in (refused.message or "")
    _verify(calls, key, clock.now)
    _verify(calls, key, clock.now)
    assert calls.remembered == 3
    full = MultiDict(signed_metadata(key, HEARTBEAT, "", int(clock.now * 1000)))
    refused = _refusal(calls, full)
    assert refused.status is Status.RESOURCE_EXHAUSTED, refused

    clock.now += 121  # every remembered time is now outside the window: forgotten, and refused as stale
    _verify(calls, key, clock.now)
    assert calls.remembered == 1
    refused = _refusal(calls, first)
    assert refused.status is Status.UNAUTHENTICATED and "clock" in (refused.message or "")


# Offers: bounded, finite, known environments.

INVALID_OFFERS = [
    ({"price": -1.0}, "offer.price"),
    ({"price": float("nan")}, "offer.price"),
    ({"price": float("inf")}, "offer.price"),
    ({"capacity": 0}, "offer.capacity"),
    ({"capacity": MAX_CAPACITY + 1}, "offer.capacity"),
    ({"capacity": 2**32 - 1}, "offer.capacity"),
    ({"queue": MAX_QUEUE + 1}, "offer.queue"),
    ({"queue": 2**32 - 1}, "offer.queue"),
    ({"envs": []}, "offer.envs"),
    ({"envs": ["nope"]}, "offer.envs[0].env_id"),
    ({"envs": ["local", "x" * 40]}, "offer.envs[1].env_id"),
    ({"envs": ["local", "local"]}, "offer.envs[1].env_id"),
    ({"score": -1.0}, "offer.envs[0].benchmark_score"),
    ({"score": float("nan")}, "offer.envs[0].benchmark_score"),
    ({"score": float("inf")}, "offer.envs[0].benchmark_score"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_OFFERS, ids=[repr(c)[:40] for c, _ in INVALID_OFFERS])
def test_an_invalid_offer_is_refused_naming_its_field(
    served: Served, change: dict[str, object], field: str
) -> None:
    offer: dict[str, object] = {"envs": ["local"], "capacity": 1, "price": 1.0, "score": 1.0, **change}
    provider = served.provider("offering")
    try:
        reply = provider.join(**offer)  # type: ignore[arg-type]

        assert reply.status is Status.INVALID_ARGUMENT, reply
        assert reply.details.startswith(field), reply
        assert len(reply.details) < 300, "the refusal must not echo the whole input"
        assert served.offer(provider.provider_id) is None
        served.assert_serving()
    finally:
        provider.close()


# Leases never past capacity.


@pytest.mark.parametrize(
    ("capacity", "queue", "slots", "concurrent"),
    [(1, 0, 8, 1), (1, 0, 8, 8), (3, 0, 8, 1), (3, 0, 2, 6), (1, 2, 8, 1), (2, 3, 8, 8)],
)
def test_a_provider_never_holds_more_leases_than_its_capacity_and_queue(
    served: Served, capacity: int, queue: int, slots: int, concurrent: int
) -> None:
    task_id = served.submit(subtasks=16)
    # The requestor fills queue places with a task's subtasks once one of its results shows a short compute.
    first = served.provider("first")
    first.join(capacity=1).value()
    (assignment,) = first.request_work(slots=1).value().assignments
    result = ResultFile("result.json", honest_result(assignment.subtask_params_json))
    assert first.submit(assignment.subtask_id, result).value().verdict == "accepted"
    first.close()
    provider = served.provider("greedy")
    try:
        provider.join(capacity=capacity, queue=queue).value()
        holds = capacity + queue

        async def ask_at_once() -> list[npb.WorkReply]:
            request = npb.WorkRequest(provider_id=provider.provider_id, slots=slots, wait_ms=0)
            calls = [
                provider.stub.RequestWork(request, metadata=provider.metadata) for _ in range(concurrent)
            ]
            return await asyncio.gather(*calls)

        replies = served.loop.run(ask_at_once(), "RequestWork at once")
        handed = [a for reply in replies for a in reply.assignments]
        assert len(handed) == holds, handed
        assert provider.request_work(slots=slots).value().assignments == [], "past capacity"
        assert served.node.store.computing(provider.provider_id) == holds
        # A lease given back makes room for exactly one more.
        provider.report_failure(handed[0].subtask_id, "RuntimeError: out of disk").value()
        assert len(provider.request_work(slots=slots).value().assignments) == 1
        assert served.node.store.computing(provider.provider_id) == holds
    finally:
        served.control.abort(task_id)
        provider.close()


# The key: made once, kept private, the id derived from it.


def test_a_provider_key_is_made_once_private_and_names_the_provider(tmp_path: Path) -> None:
    key = ProviderKey.load_or_create(tmp_path / "provider")

    path = tmp_path / "provider" / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert key.provider_id == hashlib.sha256(key.public_bytes).hexdigest()[:32]
    assert key.provider_id == provider_id_of(key.public_bytes)
    assert (tmp_path / "provider" / ID_FILE).read_text().strip() == key.provider_id
    again = ProviderKey.load_or_create(tmp_path / "provider")
    assert again.public_bytes == key.public_bytes, "a restarted provider keeps its identity"
    assert ProviderKey.load_or_create(tmp_path / "other").provider_id != key.provider_id


def test_a_provider_data_dir_from_before_keys_gets_a_key_and_its_id(tmp_path: Path) -> None:
    (tmp_path / ID_FILE).write_text("provider-0123456789ab")  # a self-chosen id, as providers wrote them

    key = ProviderKey.load_or_create(tmp_path)

    assert (tmp_path / ID_FILE).read_text().strip() == key.provider_id != "provider-0123456789ab"
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    ProviderKey.load_or_create(tmp_path)
    os.chmod(tmp_path / KEY_FILE, mode)

    with pytest.raises(ValueError, match=f"may be read by others \\(mode {mode:o}\\): chmod 600"):
        ProviderKey.load_or_create(tmp_path)
