"""A task's input files: received (streamed, size-limited, sha256-checked) before the task exists, then placed
in its `task_inputs/` before CreateTask.

An input has a *name*: a relative POSIX path (`scene.blend`, `textures/wood.png`) that becomes its place
under `task_inputs/`. A name that could leave that folder or confuse a file system is refused with a
message naming it: absolute paths, `..` or `.` parts, empty parts, NUL or backslashes, parts over 255 bytes.
Received files are plain files written by this node only; nothing a user names is ever followed as a link.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grpclib.exceptions import StreamTerminatedError

from protos import node_pb2 as npb
from protos.node_grpc import ControlStub
from runtime.node.errors import BadRequest, TooLarge
from runtime.node.resources import sha256_file

MAX_NAME_CHARS = 1024
MAX_PART_BYTES = 255
CHUNK_BYTES = 64 * 1024
"""The block size inputs are read and streamed in."""


class InputRefused(BadRequest):
    """An input file, name or size this node does not take; the message says which and why."""


class InputTooLarge(InputRefused, TooLarge):
    """An input over the size limit."""


def check_input_name(name: str) -> PurePosixPath:
    """`name` as a path relative to `task_inputs/`, or InputRefused naming what is wrong with it."""
    if not name:
        raise InputRefused("an input name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise InputRefused(f"input name {name[:40]!r}... is over {MAX_NAME_CHARS} characters")
    if "\x00" in name or "\\" in name:
        raise InputRefused(f"input name {name!r} contains a NUL or a backslash")
    if name.startswith("/"):
        raise InputRefused(
            f"input name {name!r} is an absolute path; inputs are named relative to task_inputs/"
        )
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InputRefused(
                f"input name {name!r} has a {part or 'empty'!r} part; it must stay in task_inputs/"
            )
        if len(part.encode()) > MAX_PART_BYTES:
            raise InputRefused(f"input name {name!r} has a part over {MAX_PART_BYTES} bytes")
    return PurePosixPath(*parts)


@dataclass(frozen=True)
class ReceivedInput:
    """An input received and checked, waiting in the node's staging folder for its task."""

    input_id: str
    name: str
    size: int
    sha256: str


class InputStaging:
    """Inputs received for tasks not yet submitted: `<root>/<input id>/{data,meta.json}`."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    async def receive(self, name: str, size: int, sha256: str, data: AsyncIterator[bytes]) -> ReceivedInput:
        """Store one input from `data`; InputRefused for a bad name, a size over the limit (said before any
        byte is stored, and checked again as bytes arrive), or bytes that do not match `size` / `sha256`."""
        check_input_name(name)
        if size > self.max_bytes:
            raise InputTooLarge(
                f"input {name!r} is {size} bytes; this requestor takes at most {self.max_bytes}"
            )
        input_id = uuid.uuid4().hex
        folder = self.root / input_id
        folder.mkdir(parents=True)
        digest = hashlib.sha256()
        received = 0
        try:
            with (folder / "data").open("xb") as handle:
                async for block in data:
                    received += len(block)
                    if received > size:
                        raise InputRefused(f"input {name!r}: more than the announced {size} bytes arrived")
                    digest.update(block)
                    handle.write(block)
            if received != size:
                raise InputRefused(f"input {name!r}: {received} bytes arrived, {size} were announced")
            if digest.hexdigest() != sha256.lower():
                raise InputRefused(f"input {name!r}: sha256 {digest.hexdigest()} does not match {sha256}")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        meta = ReceivedInput(input_id, name, size, digest.hexdigest())
        (folder / "meta.json").write_text(json.dumps(meta.__dict__))
        return meta

    def _meta(self, input_id: str) -> ReceivedInput:
        if not input_id or not all(c in "0123456789abcdef" for c in input_id) or len(input_id) != 32:
            raise InputRefused(f"input id {input_id!r} is malformed")
        try:
            data = json.loads((self.root / input_id / "meta.json").read_text())
        except FileNotFoundError:
            raise InputRefused(
                f"no received input with id {input_id!r} (expired, used, or never sent)"
            ) from None
        return ReceivedInput(**data)

    def check(self, input_ids: Iterable[str]) -> list[ReceivedInput]:
        """The inputs of a task about to be submitted; InputRefused for an unknown id, two inputs with the
        same name, or more than `max_bytes` together."""
        inputs = [self._meta(input_id) for input_id in input_ids]
        names = [received.name for received in inputs]
        for name in names:
            if names.count(name) > 1:
                raise InputRefused(f"two inputs are named {name!r}")
        total = sum(received.size for received in inputs)
        if total > self.max_bytes:
            raise InputTooLarge(
                f"the inputs are {total} bytes together; this requestor takes at most {self.max_bytes}"
            )
        return inputs

    def place(self, inputs: Iterable[ReceivedInput], task_inputs: Path) -> None:
        """Move checked inputs to their names under `task_inputs/` (which the node just made, empty)."""
        for received in inputs:
            target = task_inputs.joinpath(*check_input_name(received.name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / received.input_id / "data", target)
            shutil.rmtree(self.root / received.input_id, ignore_errors=True)


def local_inputs(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(name, file) for each input a user named on this machine: a file as its own name, a folder as every
    file below it under `<folder name>/...`. InputRefused for a missing path, a symbolic link anywhere (the
    node does not follow links a user hands it) or anything but a regular file (devices, FIFOs, sockets)."""
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_symlink():
            raise InputRefused(f"input {str(path)!r} is a symbolic link; give the file it points to")
        if not path.exists():
            raise InputRefused(f"input {str(path)!r} does not exist")
        if path.is_dir():
            found.extend(_folder_inputs(path))
        elif path.is_file():
            found.append((path.name, path))
        else:
            raise InputRefused(f"input {str(path)!r} is not a regular file or folder")
    for name, _ in found:
        check_input_name(name)
    return found


def _folder_inputs(folder: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for directory, subfolders, files in os.walk(folder):
        for entry in sorted([*subfolders, *files]):
            path = Path(directory) / entry
            if path.is_symlink():
                raise InputRefused(f"input {str(path)!r} is a symbolic link; give the file it points to")
            if entry in files:
                if not path.is_file():
                    raise InputRefused(f"input {str(path)!r} is not a regular file")
                found.append(((Path(folder.name) / path.relative_to(folder)).as_posix(), path))
    return found


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A local file's bytes in CHUNK_BYTES blocks."""
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            yield block


Receive = Callable[[str, int, str, AsyncIterator[bytes]], Awaitable[str]]
"""Takes one input (name, size, sha256, bytes) and returns its input id: the node's, or a client's call."""


async def send_inputs(receive: Receive, files: Sequence[tuple[str, Path]]) -> list[str]:
    """Send local files as task inputs; their input ids, in order."""
    return [
        await receive(name, path.stat().st_size, sha256_file(path), file_chunks(path)) for name, path in files
    ]


def upload_through(stub: ControlStub, metadata: dict[str, str]) -> Receive:
    """A `Receive` that streams each input to a requestor's control API (`UploadInput`)."""

    async def upload(name: str, size: int, sha256: str, data: AsyncIterator[bytes]) -> str:
        async with stub.UploadInput.open(metadata=metadata) as stream:
            header = npb.InputHeader(name=name, size=size, sha256=sha256)
            try:
                await stream.send_message(npb.InputPart(header=header))
                async for block in data:
                    await stream.send_message(npb.InputPart(data=block))
                await stream.end()
            except StreamTerminatedError:
                pass  # refused before the end: its status and message come with the reply
            reply = await stream.recv_message()
        assert reply is not None
        return reply.input_id

    return upload
