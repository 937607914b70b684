"""Reading files out of a folder that sandboxed code could write, without ever following a link.

A sandboxed guest cannot follow a symbolic link out of its folders, but it can make one (WASI's
`path_symlink` takes any target): `result.txt -> ../../../../etc/passwd`. Host code that then opens
`<folder>/result.txt` the ordinary way reads the host's file. So every read here walks from the folder
one component at a time with `openat(..., O_NOFOLLOW)` relative to the folder's descriptor, and takes
only regular files and folders: a symbolic link (dangling or not, pointing inside the folder or out), a
FIFO, a socket or a device anywhere below the folder is refused with `UnsafePath` naming it. The file is
checked and read through the same descriptor, so a link swapped in after the check is not followed either.

The folder itself is opened the ordinary way: its path is the host's own, not the guest's. Hard links
need no check: WASI's `path_link` refuses a source outside the guest's writable folders (measured: EPERM
from a read-only preopen and for `..` paths), so a guest cannot link a host file in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath

TARGET_SHOWN = 200
"""How much of a link's target a refusal quotes."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A path below a sandboxed folder that host code refuses to follow or read: a symbolic link,
    something other than a regular file or folder, or a path that leaves the folder (a bad value a guest
    made, so a ValueError)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"refused {path}: {problem}")
        self.path = path
        self.problem = problem


def relative_parts(relative: str | PurePath) -> tuple[str, ...]:
    """The components of a path that stays inside its folder; UnsafePath for an absolute path, `..`,
    or an empty path."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise UnsafePath(str(relative), "the path leaves its folder")
    parts = tuple(part for part in path.parts if part != ".")
    if not parts:
        raise UnsafePath(str(relative), "the path names the folder itself, not a file in it")
    return parts


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _refusal(dir_fd: int, name: str, shown: str, wanted: str) -> UnsafePath:
    """Why `name` (in `dir_fd`) is not the `wanted` thing, read without following it."""
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(name, dir_fd=dir_fd)
        quoted = repr(target[:TARGET_SHOWN]) + ("..." if len(target) > TARGET_SHOWN else "")
        return UnsafePath(shown, f"it is a symbolic link (to {quoted}); links are never followed")
    return UnsafePath(shown, f"it is {_kind(info.st_mode)}, not {wanted}")


def _open_dir_in(dir_fd: int, name: str, shown: str) -> int:
    """A descriptor of the folder `name` inside `dir_fd`; UnsafePath if it is a link or not a folder."""
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)  # FileNotFoundError when missing
    if not stat.S_ISDIR(info.st_mode):
        raise _refusal(dir_fd, name, shown, "a folder")
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:  # swapped for a link or a file since the stat
        raise _refusal(dir_fd, name, shown, "a folder") from exc


def _open_file_in(dir_fd: int, name: str, shown: str) -> io.BufferedReader:
    """The regular file `name` inside `dir_fd`, open for reading; UnsafePath for anything else."""
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        raise _refusal(dir_fd, name, shown, "a regular file")
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)  # non-blocking: a FIFO swapped in cannot hang us
    except OSError as exc:
        raise _refusal(dir_fd, name, shown, "a regular file") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(shown, "it stopped being a regular file while it was opened")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def _folder(root: Path, parts: tuple[str, ...]) -> Iterator[int]:
    """A descriptor of `root/parts...`, reached one component at a time without following links."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, part in enumerate(parts):
            child = _open_dir_in(fd, part, str(PurePosixPath(*parts[: depth + 1])))
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_file(root: Path, relative: str | PurePath) -> io.BufferedReader:
    """Open the regular file `relative` below the folder `root` for reading, following no link on the way.

    UnsafePath names the offending path; FileNotFoundError when something on the way does not exist.
    """
    parts = relative_parts(relative)
    with _folder(root, parts[:-1]) as fd:
        return _open_file_in(fd, parts[-1], str(PurePosixPath(*parts)))


def check_file(root: Path, relative: str | PurePath) -> Path:
    """`root / relative` if it is a regular file reached without links (else UnsafePath, as `open_file`)."""
    open_file(root, relative).close()
    return root / relative


def read_bytes(root: Path, relative: str | PurePath) -> bytes:
    with open_file(root, relative) as handle:
        return handle.read()


def file_digest(root: Path, relative: str | PurePath) -> tuple[str, int]:
    """sha256 (hex) and size of the regular file `relative` below `root`, read as `open_file` does."""
    with open_file(root, relative) as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        return digest, handle.tell()


def copy_file(root: Path, relative: str | PurePath, destination: Path) -> None:
    """Copy the regular file `relative` below `root` to `destination` (a host path), as `open_file` reads."""
    with open_file(root, relative) as source, open(destination, "wb") as target:
        shutil.copyfileobj(source, target)


def copy_tree(root: Path, destination: Path) -> None:
    """Copy the folders and regular files below `root` into `destination` (created; existing files
    overwritten). UnsafePath at the first link or special file: what was copied before it stays."""
    with _folder(root, ()) as fd:
        _copy_folder(fd, destination, PurePosixPath())


def _copy_folder(dir_fd: int, destination: Path, where: PurePosixPath) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    with os.scandir(dir_fd) as scan:
        names = sorted(entry.name for entry in scan)
    for name in names:
        shown = str(where / name)
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            child = _open_dir_in(dir_fd, name, shown)
            try:
                _copy_folder(child, destination / name, where / name)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            with _open_file_in(dir_fd, name, shown) as source, open(destination / name, "wb") as target:
                shutil.copyfileobj(source, target)
        else:
            raise _refusal(dir_fd, name, shown, "a regular file or a folder")
