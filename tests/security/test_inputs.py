"""Hostile task inputs, through the control API (UploadInput / SubmitTask on a real requestor server) and
through the CLI (`taskapi run --input`, `taskapi task submit --input`).

Each case asserts the named refusal, that the requestor still takes a good input afterwards, and that
nothing was written outside the requestor's staging folder (no file at the place a name points to, and
no leftovers in staging).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from protos import node_pb2 as npb
from protos.node_grpc import ControlStub
from runtime.node.requestor import RequestorConfig, RequestorNode
from runtime.node.requestor_service import bearer, serve_requestor
from runtime.node.task_inputs import upload_through

TOKEN = "t" * 32
LIMIT = 4096
TASKAPI = str(Path(sys.executable).with_name("taskapi"))

Scenario = Callable[[ControlStub, dict[str, str]], Awaitable[Any]]


def run_against_requestor(data_dir: Path, scenario: Scenario) -> tuple[Any, str]:
    """Run `scenario` against a real requestor server; returns its result and a good upload's id after."""

    async def main() -> tuple[Any, str]:
        node = RequestorNode(data_dir, RequestorConfig(max_input_bytes=LIMIT))
        await node.start()
        server, port = await serve_requestor(node, "127.0.0.1", 0, provider_token=TOKEN, control_token=TOKEN)
        channel = Channel("127.0.0.1", port)
        try:
            stub, metadata = ControlStub(channel), bearer(TOKEN)
            try:
                outcome: Any = await scenario(stub, metadata)
            except GRPCError as exc:
                outcome = exc
            healthy = await upload_through(stub, metadata)("ok.txt", 2, _sha(b"ok"), _chunks(b"ok"))
            return outcome, healthy
        finally:
            channel.close()
            server.close()
            await server.wait_closed()
            await node.stop()

    return asyncio.run(main())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload(name: str, data: bytes, size: int | None = None, sha256: str | None = None) -> Scenario:
    async def scenario(stub: ControlStub, metadata: dict[str, str]) -> str:
        send = upload_through(stub, metadata)
        return await send(name, len(data) if size is None else size, sha256 or _sha(data), _chunks(data))

    return scenario


def staged_files(data_dir: Path) -> list[str]:
    staging = data_dir / "inputs"
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())


HOSTILE_NAMES = [
    ("../escape.txt", "'..' part"),
    ("a/../../escape.txt", "'..' part"),
    ("/tmp/taskapi-escape.txt", "absolute path"),
    ("", "empty"),
    (".", "'.' part"),
    ("a//b", "'empty' part"),
    ("a\\..\\b", "backslash"),
    ("a\x00b", "NUL"),
    ("x" * 256, "over 255 bytes"),
]


@pytest.mark.parametrize(("name", "why"), HOSTILE_NAMES, ids=[why for _, why in HOSTILE_NAMES])
def test_upload_with_hostile_name_is_refused(tmp_path: Path, name: str, why: str) -> None:
    outcome, healthy = run_against_requestor(tmp_path, upload(name, b"data"))
    assert isinstance(outcome, GRPCError)
    assert outcome.status is Status.INVALID_ARGUMENT
    assert why in (outcome.message or "")
    assert len(healthy) == 32
    assert staged_files(tmp_path) == [f"{healthy}/data", f"{healthy}/meta.json"]
    assert not Path("/tmp/taskapi-escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


BAD_CONTENTS = [
    ("over the limit, announced", b"x" * (LIMIT + 1), None, None, Status.RESOURCE_EXHAUSTED, "at most"),
    ("more bytes than announced", b"x" * 100, 10, None, Status.INVALID_ARGUMENT, "more than the announced"),
    ("fewer bytes than announced", b"x" * 10, 100, None, Status.INVALID_ARGUMENT, "100 were announced"),
    ("wrong sha256", b"x" * 10, None, "0" * 64, Status.INVALID_ARGUMENT, "does not match"),
]


@pytest.mark.parametrize(
    ("data", "size", "sha256", "status", "says"),
    [case[1:] for case in BAD_CONTENTS],
    ids=[case[0] for case in BAD_CONTENTS],
)
def test_upload_with_bad_contents_is_refused(
    tmp_path: Path, data: bytes, size: int | None, sha256: str | None, status: Status, says: str
) -> None:
    outcome, healthy = run_against_requestor(tmp_path, upload("f.bin", data, size, sha256))
    assert isinstance(outcome, GRPCError)
    assert (outcome.status, says in (outcome.message or "")) == (status, True), outcome.message
    assert staged_files(tmp_path) == [f"{healthy}/data", f"{healthy}/meta.json"]


def submit_with(input_ids: Callable[[list[str]], list[str]], uploads: list[tuple[str, bytes]]) -> Scenario:
    """Upload `uploads` (name, bytes), then submit a task naming `input_ids(their ids)`."""

    async def scenario(stub: ControlStub, metadata: dict[str, str]) -> npb.SubmitTaskReply:
        send = upload_through(stub, metadata)
        ids = [await send(name, len(data), _sha(data), _chunks(data)) for name, data in uploads]
        request = npb.SubmitTaskRequest(
            app="tutorialapp",
            env_id="wasm",
            task_params_json='{"input": "x", "difficulty": 1, "subtasks": 1}',
            input_ids=input_ids(ids),
        )
        return await stub.SubmitTask(request, metadata=metadata)

    return scenario


BAD_SUBMITS = [
    ("unknown input id", lambda ids: ["0" * 32], [], Status.INVALID_ARGUMENT, "no received input"),
    ("malformed input id", lambda ids: ["../../x"], [], Status.INVALID_ARGUMENT, "malformed"),
    (
        "two inputs with one name",
        lambda ids: ids,
        [("a", b"a"), ("a", b"b")],
        Status.INVALID_ARGUMENT,
        "two inputs",
    ),
    (
        "over the limit together",
        lambda ids: ids,
        [("a", b"x" * 3000), ("b", b"y" * 3000)],
        Status.RESOURCE_EXHAUSTED,
        "together",
    ),
]


@pytest.mark.parametrize(
    ("pick", "uploads", "status", "says"), [case[1:] for case in BAD_SUBMITS], ids=[c[0] for c in BAD_SUBMITS]
)
def test_submit_with_bad_inputs_is_refused_before_the_app_sees_it(
    tmp_path: Path,
    pick: Callable[[list[str]], list[str]],
    uploads: list[tuple[str, bytes]],
    status: Status,
    says: str,
) -> None:
    outcome, _ = run_against_requestor(tmp_path, submit_with(pick, uploads))
    assert isinstance(outcome, GRPCError)
    assert (outcome.status, says in (outcome.message or "")) == (status, True), outcome.message
    assert not (tmp_path / "app-work").exists()  # no task dir made, no app server started


def _fifo(folder: Path) -> Path:
    path = folder / "pipe"
    os.mkfifo(path)
    return path


def _socket(folder: Path) -> Path:
    path = folder / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def _link(folder: Path) -> Path:
    (folder / "real.txt").write_text("x")
    (folder / "link.txt").symlink_to(folder / "real.txt")
    return folder / "link.txt"


def _folder_with_link(folder: Path) -> Path:
    inner = folder / "scene"
    inner.mkdir()
    (inner / "ok.txt").write_text("x")
    (inner / "secret").symlink_to("/etc/passwd")
    return inner


def _folder_with_folder_link(folder: Path) -> Path:
    inner = folder / "scene"
    inner.mkdir()
    (inner / "etc").symlink_to("/etc")
    return inner


LOCAL_HOSTILE = [
    ("symbolic link", _link, "symbolic link"),
    ("link inside a folder", _folder_with_link, "symbolic link"),
    ("folder link inside a folder", _folder_with_folder_link, "symbolic link"),
    ("device file", lambda folder: Path("/dev/null"), "not a regular file"),
    ("FIFO", _fifo, "not a regular file"),
    ("unix socket", _socket, "not a regular file"),
    ("missing file", lambda folder: folder / "missing.txt", "does not exist"),
]


@pytest.mark.parametrize("command", ["run", "submit"])
@pytest.mark.parametrize(("make", "says"), [c[1:] for c in LOCAL_HOSTILE], ids=[c[0] for c in LOCAL_HOSTILE])
def test_cli_refuses_hostile_input_paths(
    tmp_path: Path, command: str, make: Callable[[Path], Path], says: str
) -> None:
    """Refused before anything is sent: a usage error (exit 2) naming the path and why."""
    path = make(tmp_path)
    args = {
        "run": ["run", "tutorialapp", "--set", "input=x", "--set", "difficulty=1", "--set", "subtasks=1"],
        "submit": ["task", "submit", "tutorialapp", "--requestor", "127.0.0.1:1", "--token", TOKEN],
    }[command]
    result = subprocess.run(
        [TASKAPI, *args, "--input", str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "--input" in result.stderr
    assert str(path) in result.stderr.replace("\n", "").replace(" ", "") or path.name in result.stderr
