"""A real `taskapi provider join` process against a hostile or broken requestor (issue 18, item 6).

The requestor here is a grpclib server in this test process speaking the node protocol by script: it
answers RequestWork with an error (as a requestor did when one of its apps named a bad resource, lost
one, or was slow), sends a resource chunk over the message limit, refuses the provider, or serves a TLS
certificate the provider does not trust. A provider logs any failure and retries with exponential
backoff and jitter; only an authentication refusal or a certificate that does not verify ends it, with
one line and no traceback. Waits are hang guards, never timing assertions (the backoff's growth is
asserted on the delays' lower and upper bounds, which the jitter never crosses).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from apps.sdk.process import HOST, free_port
from apps.sdk.wire_limits import MAX_MESSAGE_BYTES
from protos import node_pb2 as npb
from protos.node_grpc import RequestorBase
from tests.node.cluster import EXIT_GUARD_S, TASKAPI, Cluster, NodeProcess, wait_until

REPO = Path(__file__).resolve().parents[2]

TOKEN = "resilience-token"
FAILURES = 4


@dataclass
class Script:
    """What the hostile requestor does: RequestWork's first `failures` calls fail with `error()`."""

    error: Callable[[], BaseException] | None = None
    failures: int = FAILURES
    oversize_resource: bool = False
    work_calls: list[float] = field(default_factory=list)
    failure_reports: list[str] = field(default_factory=list)


class HostileRequestor(RequestorBase):
    """The node protocol, answered by a `Script` (calls are recorded with their arrival time)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.handed_out = False

    async def Join(self, stream: Stream[npb.JoinRequest, npb.JoinReply]) -> None:
        await stream.recv_message()
        await stream.send_message(npb.JoinReply(lease_ms=60_000, heartbeat_ms=1000))

    async def RequestWork(self, stream: Stream[npb.WorkRequest, npb.WorkReply]) -> None:
        await stream.recv_message()
        script = self.script
        script.work_calls.append(time.monotonic())
        if script.error is not None and len(script.work_calls) <= script.failures:
            raise script.error()
        if script.oversize_resource and not self.handed_out:
            self.handed_out = True
            await stream.send_message(npb.WorkReply(assignments=[assignment_with_a_resource()]))
            return
        await asyncio.sleep(0.2)
        await stream.send_message(npb.WorkReply())

    async def Heartbeat(self, stream: Stream[npb.HeartbeatRequest, npb.HeartbeatReply]) -> None:
        await stream.recv_message()
        await stream.send_message(npb.HeartbeatReply())

    async def FetchResource(self, stream: Stream[npb.FetchRequest, npb.Chunk]) -> None:
        await stream.recv_message()
        await stream.send_message(npb.Chunk(data=b"c" * (MAX_MESSAGE_BYTES + 1)))

    async def SubmitResult(self, stream: Stream[npb.ResultPart, npb.SubmitReply]) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, "this requestor takes no results")

    async def SubmitResults(self, stream: Stream[npb.ResultPart, npb.SubmitVerdict]) -> None:
        raise GRPCError(Status.UNIMPLEMENTED, "this requestor takes no results")

    async def ReportFailure(self, stream: Stream[npb.FailureReport, npb.FailureReply]) -> None:
        report = await stream.recv_message()
        assert report is not None
        self.script.failure_reports.append(report.reason)
        await stream.send_message(npb.FailureReply())

    async def Leave(self, stream: Stream[npb.LeaveRequest, npb.LeaveReply]) -> None:
        await stream.recv_message()
        await stream.send_message(npb.LeaveReply())


def assignment_with_a_resource() -> npb.Assignment:
    return npb.Assignment(
        task_id="hostile-task",
        subtask_id="hostile-task-1",
        app_name="tutorialapp",
        env_id="local",
        subtask_params_json='{"input": "x", "difficulty": 1, "start": 0, "end": 8}',
        resources=[npb.Resource(name="input.bin", sha256="ab" * 32, size=10)],
        deadline_ms=int(time.time() * 1000) + 60_000,
    )


@contextlib.contextmanager
def serving(script: Script, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """Serve a `HostileRequestor` on a free port from a thread of its own; yield the port."""
    loop = asyncio.new_event_loop()
    port = free_port(HOST)
    server: Server | None = None
    started = threading.Event()

    async def start() -> None:
        nonlocal server
        server = Server([HostileRequestor(script)])
        await server.start(HOST, port, ssl=tls)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield port
    finally:

        async def stop() -> None:
            assert server is not None
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def provider(root: Path, port: int, *options: str) -> NodeProcess:
    args = [TASKAPI, "provider", "join", f"{HOST}:{port}", "--token", TOKEN, "--env", "local"]
    args += ["--data-dir", str(root / "provider"), *options]
    env = {**os.environ, "TASKAPI_DATA_DIR": str(root / "home"), "PYTHONUNBUFFERED": "1"}
    return NodeProcess("provider", args, root / "provider.log", env)


@contextlib.contextmanager
def running(process: NodeProcess) -> Iterator[NodeProcess]:
    try:
        yield process
    finally:
        process.stop()
        print(process.log_text()[-4000:])


class Boom(Exception):
    """An exception in the requestor's handler (grpclib answers UNKNOWN)."""


TRANSIENT: dict[str, Callable[[], BaseException]] = {
    "INTERNAL (an app's bad resource name)": lambda: GRPCError(
        Status.INTERNAL, "task t: NextSubtask named a bad resource: invalid resource name '../x'"
    ),
    "INVALID_ARGUMENT (old requestor, bad resource name)": lambda: GRPCError(
        Status.INVALID_ARGUMENT, "invalid resource name '../../etc/passwd'"
    ),
    "NOT_FOUND (a missing resource)": lambda: GRPCError(Status.NOT_FOUND, "no such file: inputs/gone.bin"),
    "DEADLINE_EXCEEDED (a slow NextSubtask)": lambda: GRPCError(Status.DEADLINE_EXCEEDED, "app too slow"),
    "RESOURCE_EXHAUSTED": lambda: GRPCError(Status.RESOURCE_EXHAUSTED, "busy"),
    "FAILED_PRECONDITION (not joined)": lambda: GRPCError(Status.FAILED_PRECONDITION, "join first"),
    "UNAVAILABLE (restarting)": lambda: GRPCError(Status.UNAVAILABLE, "the requestor is shutting down"),
    "UNKNOWN (a handler's exception)": lambda: Boom("requestor bug"),
}


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=list(TRANSIENT))
def test_a_failing_request_work_is_retried_with_backoff(
    tmp_path: Path, error: Callable[[], BaseException]
) -> None:
    script = Script(error=error)
    with serving(script) as port, running(provider(tmp_path, port)) as node:
        wait_until(lambda: len(script.work_calls) > FAILURES + 1, "the provider asking for work again")

        assert node.running, node.log_text()
        log = node.log_text()
        assert "Traceback" not in log
        assert log.count("RequestWork failed (") >= FAILURES, log
        gaps = [
            after - before for before, after in zip(script.work_calls, script.work_calls[1:], strict=False)
        ]
        # Delays are drawn from [c/2, c] with c = 0.5, 1, 2, 4 s: the third is at least 1 s, the first at
        # most 0.5 s (plus the call's own time).
        assert gaps[2] >= 1.0 > gaps[0], gaps


FATAL = {
    "UNAUTHENTICATED": Status.UNAUTHENTICATED,
    "PERMISSION_DENIED": Status.PERMISSION_DENIED,
}


@pytest.mark.parametrize("status", FATAL.values(), ids=list(FATAL))
def test_an_auth_refusal_ends_the_provider_with_one_line(tmp_path: Path, status: Status) -> None:
    script = Script(error=lambda: GRPCError(status, "this key is banned"), failures=1_000)
    with serving(script) as port, running(provider(tmp_path, port)) as node:
        code = node.process.wait(EXIT_GUARD_S)

        log = node.log_text()
        assert code == 1, log
        last = log.strip().splitlines()[-1]
        assert (
            last
            == f"Error: requestor at {HOST}:{port} refused this provider: {status.name}: this key is banned"
        )
        assert "Traceback" not in log
        assert len(script.work_calls) == 1, "an auth refusal was retried"


def test_an_oversize_resource_fails_the_subtask_not_the_provider(tmp_path: Path) -> None:
    script = Script(oversize_resource=True)
    with serving(script) as port, running(provider(tmp_path, port)) as node:
        wait_until(lambda: bool(script.failure_reports), "the provider reporting the subtask failed")
        wait_until(lambda: len(script.work_calls) > 3, "the provider asking for more work")

        (reason,) = script.failure_reports
        assert "RESOURCE_EXHAUSTED" in reason and f"over the limit of {MAX_MESSAGE_BYTES} bytes" in reason
        assert node.running, node.log_text()
        assert not list((tmp_path / "provider").rglob("input.bin")), "an oversize resource was kept"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    tls.set_alpn_protocols(["h2"])
    return tls


def test_a_certificate_that_does_not_verify_ends_the_provider(tmp_path: Path) -> None:
    served_cert, served_key = self_signed(tmp_path, "requestor")
    other_ca, _ = self_signed(tmp_path, "someone-else")
    script = Script()
    with (
        serving(script, server_tls(served_cert, served_key)) as port,
        running(provider(tmp_path, port, "--tls-ca", str(other_ca))) as node,
    ):
        code = node.process.wait(EXIT_GUARD_S)

        log = node.log_text()
        assert code == 1, log
        last = log.strip().splitlines()[-1]
        assert last.startswith(f"Error: requestor at {HOST}:{port}: TLS certificate check failed: "), last
        assert "Traceback" not in log
        assert not script.work_calls


def test_a_trusted_certificate_lets_the_provider_work(tmp_path: Path) -> None:
    """The control case of the one above: the same provider trusting the served certificate works."""
    served_cert, served_key = self_signed(tmp_path, "requestor")
    script = Script()
    with (
        serving(script, server_tls(served_cert, served_key)) as port,
        running(provider(tmp_path, port, "--tls-ca", str(served_cert))) as node,
    ):
        wait_until(lambda: len(script.work_calls) > 1, "the provider asking for work over TLS")
        assert node.running


BROKEN_APP = '''
import sys

from apps.sdk.handlers import Subtask
from apps.sdk.server import main
from apps.tutorialapp.provider import TutorialProvider
from apps.tutorialapp.requestor import TutorialRequestor


class BrokenRequestor(TutorialRequestor):
    """Plans like tutorialapp, but every NextSubtask names a resource it cannot serve."""

    async def next_subtask(self, task_dir, subtask_id, opaque_node_id):
        return Subtask(params={{}}, resources=[{resource!r}])


sys.exit(main(sys.argv[1:], requestor=BrokenRequestor, provider=TutorialProvider, prog="brokenapp"))
'''

BROKEN_RESOURCES = {"a bad resource name": "../../escape.bin", "a missing resource": "missing.bin"}


@pytest.mark.parametrize("resource", BROKEN_RESOURCES.values(), ids=list(BROKEN_RESOURCES))
def test_a_broken_requestor_app_does_not_reach_a_provider_that_never_whitelisted_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resource: str
) -> None:
    """Real processes: a requestor serving a broken added app and tutorialapp; a provider (shipped apps only)
    asking for work gets tutorialapp's, and never an error from the broken app."""
    modules = tmp_path / "modules" / "brokenapp"
    modules.mkdir(parents=True)
    (modules / "__init__.py").write_text("")
    (modules / "__main__.py").write_text(BROKEN_APP.format(resource=resource))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(modules.parent), os.environ.get("PYTHONPATH", "")]))
    cluster = Cluster(tmp_path / "cluster")
    try:
        requestor_data = tmp_path / "cluster" / "requestor"  # the requestor's app manager lives there
        (requestor_data / "apps").mkdir(parents=True)
        descriptor = json.loads((REPO / "apps" / "tutorialapp" / "descriptor.json").read_text())
        descriptor.update(name="brokenapp", prerequisites={"module": "brokenapp"})
        (requestor_data / "apps" / "brokenapp.json").write_text(json.dumps(descriptor))
        enabled = subprocess.run(
            [TASKAPI, "apps", "enable", "brokenapp"],
            env={**os.environ, "TASKAPI_DATA_DIR": str(requestor_data)},
            capture_output=True,
            text=True,
            timeout=EXIT_GUARD_S,
        )
        assert enabled.returncode == 0, enabled.stderr
        requestor = cluster.requestor()
        control = requestor.control()
        params = {"input": "broken-app", "difficulty": 8, "subtasks": 2}
        broken = control.submit("brokenapp", "local", params).value().task_id
        honest = control.submit("tutorialapp", "local", params).value().task_id
        control.close()
        worker = cluster.provider("shipped-only", requestor)

        status = requestor.wait_for_task(honest)

        assert status.state == "finished", status
        assert worker.running, worker.log_text()
        log = worker.log_text()
        assert "Traceback" not in log
        assert "RequestWork failed" not in log, "the broken app's failure reached the provider"
        assert requestor.store.task_state(broken) in ("active", "failed")
        requestor.wait_for_log(f"task {broken}: NextSubtask named a bad resource")
    finally:
        cluster.close()
        print(cluster.logs())
