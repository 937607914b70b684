"""Snapshots of a directory tree, to see what a call created, changed or deleted."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

Entry = tuple[str, int, int, str]
"""(kind 'dir' | 'file' | 'link' | 'other', size, mtime_ns, sha256 of a file's bytes or '')."""

Snapshot = dict[str, Entry]


def _entry(path: Path, contents: bool) -> Entry:
    info = path.lstat()
    if path.is_symlink():
        return ("link", 0, info.st_mtime_ns, os.readlink(path))
    if path.is_dir():
        return ("dir", 0, 0, "")
    if path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if contents else ""
        return ("file", info.st_size, info.st_mtime_ns, digest)
    return ("other", 0, info.st_mtime_ns, "")


def snapshot(
    root: Path, *, contents: bool = False, skip: Callable[[str], bool] = lambda _: False
) -> Snapshot:
    """Every entry under `root` by relative POSIX path (directories' own mtimes are ignored: creating a
    file inside one is reported as that file). `contents` also hashes file bytes. `skip(path)` leaves an
    entry, and everything under it, out."""
    found: Snapshot = {}
    if not root.is_dir():
        return found
    for directory, dirs, files in os.walk(root, followlinks=False):
        base = Path(directory)
        for name in sorted([*dirs, *files]):
            path = base / name
            relative = path.relative_to(root).as_posix()
            if skip(relative):
                if name in dirs:
                    dirs.remove(name)
                continue
            try:
                found[relative] = _entry(path, contents)
            except OSError:
                continue
    return found


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs, as `created PATH` / `changed PATH` / `deleted PATH`, sorted by path."""
    described = []
    for path in sorted(set(before) | set(after)):
        if path not in before:
            described.append(f"created {path}")
        elif path not in after:
            described.append(f"deleted {path}")
        elif before[path] != after[path]:
            described.append(f"changed {path}")
    return described


def under(path: str, folder: str) -> bool:
    """True when POSIX `path` is `folder` or inside it."""
    return path == folder or PurePosixPath(path).is_relative_to(folder)


def file_tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative POSIX path, with its bytes."""
    if not root.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
