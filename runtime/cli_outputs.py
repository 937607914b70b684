"""Copying a finished task's outputs out of the node's data dir to where the user asked (`--output`).

The outputs dir is written by the app (a docker app's container writes it through a bind mount), so its
entries are not trusted: only regular files inside it are copied, never a link (which could point at any
file of this machine) and never a name that climbs out of it or out of the destination.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from protos import node_pb2 as npb


class UnsafeOutput(Exception):
    """An output the app left that is not a plain file inside its outputs dir; the message names it."""


def _source(root: Path, name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise UnsafeOutput(f"output {name!r} names a path outside the task's outputs dir; not copied")
    source = root
    for part in relative.parts:
        source = source / part
        if source.is_symlink():
            raise UnsafeOutput(f"output {name!r} goes through a link ({source.name}); not copied")
    if not source.is_file():
        raise UnsafeOutput(f"output {name!r} is not a regular file; not copied")
    return source


def collect_outputs(status: npb.TaskStatus, output: Path) -> list[Path]:
    """Copy the task's outputs into `output`, keeping their layout; `UnsafeOutput` before copying any
    if one of them is not a plain file inside the outputs dir."""
    root = Path(status.outputs_dir)
    sources = [(name, _source(root, name)) for name in status.outputs]
    output.mkdir(parents=True, exist_ok=True)
    copied = []
    for name, source in sources:
        target = output / PurePosixPath(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb", opener=_no_follow) as reader, open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer)
        copied.append(target)
    return copied


def _no_follow(path: str, flags: int) -> int:
    """Open without following a link swapped in after the check."""
    return os.open(path, flags | os.O_NOFOLLOW)
