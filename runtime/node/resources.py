"""Content-addressed files: sha256 digests, a registry of what the requestor serves, chunked transfer,
and one download per file at a time on a provider."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from apps.sdk.sandboxed_files import UnsafePath, file_digest, open_file

CHUNK_BYTES = 256 * 1024
READ_ON_LOOP_BYTES = 256 * 1024
"""Files up to this size are hashed on the event loop: handing them to a thread costs more (a thread pool
round trip and GIL hand-offs) than hashing them. Bigger ones go to a thread, so the loop never stalls on
one."""

T = TypeVar("T")


async def hash_off_loop_if_big(path: Path, read: Callable[[], T]) -> T:
    """`read()` (which reads and hashes the file at `path`) on the event loop if the file is small, in a
    thread if it is big. A file that cannot be looked at is read on the loop: `read` raises for it at once."""
    try:
        size = path.lstat().st_size
    except OSError:
        size = 0
    if size <= READ_ON_LOOP_BYTES:
        return read()
    return await asyncio.to_thread(read)


def sha256_file(path: Path) -> str:
    """The digest of a file of the node's own (a module it fetched or was given): never one a guest wrote,
    which goes through `apps.sdk.sandboxed_files`."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The bytes of an open file from its start, in chunks of CHUNK_BYTES."""
    handle.seek(0)
    yield from iter(lambda: handle.read(CHUNK_BYTES), b"")


class ResourceRegistry:
    """The files a requestor serves to providers, by sha256 (only registered files are reachable).

    Each is a file in a folder: a task's subtask_inputs, which its app's guest may write, or the folder of
    an app's module. Files are hashed and opened through `apps.sdk.sandboxed_files`, so a link put there
    (at registration or later) is refused with `UnsafePath`, never followed.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[Path, str]] = {}

    def register(self, folder: Path, name: str) -> tuple[str, int]:
        """Serve `folder/name` under its digest; returns the digest and the size."""
        digest, size = file_digest(folder, name)
        self._files[digest] = (folder, name)
        return digest, size

    def restore(self, folder: Path, name: str, digest: str) -> None:
        """Serve `folder/name` under a digest recorded earlier (after a restart; checked by the fetcher)."""
        self._files[digest] = (folder, name)

    def open(self, digest: str) -> io.BufferedReader | None:
        """The registered file with this digest, open for reading; None if none is registered or it is
        gone. UnsafePath if it was replaced by a link or a special file."""
        found = self._files.get(digest)
        if found is None:
            return None
        try:
            return open_file(*found)
        except FileNotFoundError:
            return None


class VerifiedFiles:
    """The digests of files this node hashed, each kept while the file's identity is unchanged: a file
    used again and again (the app's module, by every subtask) is hashed once, not on every use. Any write
    to it, or another file in its place, changes its identity (but for a write of the same size within the
    same tick of the kernel's clock as the hash)."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[str, FileIdentity]] = {}

    def known(self, path: Path, sha256: str) -> bool:
        """Whether `path` is a regular file hashed before with digest `sha256`, unchanged since (a stat)."""
        identity = _identity(path)
        return identity is not None and self._known.get(path) == (sha256, identity)

    def holds(self, path: Path, sha256: str) -> bool:
        """Whether `path` is a regular file with digest `sha256`, hashing it unless it is `known`."""
        identity = _identity(path)
        if identity is None:
            return False
        if self._known.get(path) == (sha256, identity):
            return True
        if sha256_file(path) != sha256:
            return False
        self._known[path] = (sha256, identity)  # if the file changed since the stat, this no longer matches
        return True


Download = Callable[[BinaryIO], Awaitable[None]]
"""Writes a file's bytes into the open temporary file it is given."""


class Downloads:
    """Content-addressed downloads on a provider: at most one per target file at a time.

    Concurrent subtasks needing the same file (the app's module, a shared resource) wait for the download
    in flight instead of writing the same file. Each download goes to a temporary file of its own, its
    sha256 is checked, and it replaces the target atomically, so a reader sees the old file or the whole
    new one, never a part. A file already verified is not hashed again while it is unchanged
    (`VerifiedFiles`).
    """

    def __init__(self) -> None:
        self._in_flight: dict[Path, asyncio.Future[None]] = {}
        self._verified = VerifiedFiles()

    async def ensure(self, target: Path, sha256: str, download: Download, what: str) -> None:
        """Make `target` hold the bytes with digest `sha256`, downloading them unless a verified copy is
        there. ValueError (naming `what`) if the bytes that arrive have another digest."""
        while True:
            if self._verified.known(target, sha256):  # no thread needed for a stat
                return
            if await asyncio.to_thread(self._verified.holds, target, sha256):
                return
            in_flight = self._in_flight.get(target)
            if in_flight is None:
                break
            await asyncio.shield(in_flight)  # that download's failure is ours too
        running = asyncio.ensure_future(_download(target, sha256, download, what))
        self._in_flight[target] = running
        running.add_done_callback(lambda done: self._forget(target, done))
        await asyncio.shield(running)  # a cancelled waiter leaves the download to the others

    def _forget(self, target: Path, done: asyncio.Future[None]) -> None:
        if self._in_flight.get(target) is done:
            del self._in_flight[target]
        if not done.cancelled():
            done.exception()  # retrieved here: its waiters (if any are left) raise it themselves


FileIdentity = tuple[int, int, int, int, int]
"""A file's device, inode, size, and modification and change times (ns): another file in its place, or
bytes written to it, change it (the change time also when the modification time is set back)."""


def _identity(path: Path) -> FileIdentity | None:
    """The identity of the regular file at `path`; None if there is none."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


async def _download(target: Path, sha256: str, download: Download, what: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w+b") as handle:
            await download(handle)
            handle.flush()
            handle.seek(0)
            digest = (await asyncio.to_thread(hashlib.file_digest, handle, "sha256")).hexdigest()
        if digest != sha256:
            raise ValueError(f"{what} arrived with sha256 {digest}, not the announced {sha256}")
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


@dataclass
class HashedFile:
    """A regular file below a sandboxed folder, open for reading, with the sha256 and size of its bytes.

    Hashed and later sent through one descriptor, opened without following links: what is sent is what was
    hashed, whatever a guest does to the path afterwards.
    """

    handle: io.BufferedReader
    name: str
    sha256: str
    size: int

    @classmethod
    def open(cls, folder: Path, path: Path) -> HashedFile:
        """Open `path` (below `folder`); UnsafePath for a link, a special file or a path outside `folder`."""
        if not path.is_relative_to(folder):
            raise UnsafePath(str(path), f"it is outside {folder}")
        handle = open_file(folder, path.relative_to(folder))
        try:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except BaseException:
            handle.close()
            raise
        return cls(handle, path.name, digest, handle.tell())

    @classmethod
    async def open_off_loop_if_big(cls, folder: Path, path: Path) -> HashedFile:
        """`open`, on the event loop for a small file and in a thread for a big one (hash_off_loop_if_big)."""
        return await hash_off_loop_if_big(path, lambda: cls.open(folder, path))

    def close(self) -> None:
        self.handle.close()
