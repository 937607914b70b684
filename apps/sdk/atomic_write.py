"""Replacing a file's content all at once, durably: readers see the old content or the new, never a part.

The new bytes go to a temporary file beside the target (same folder, so the rename stays on one file
system), are flushed to disk (`fsync`), and the temporary file is renamed over the target; the folder is
then flushed too, so the rename itself survives a power loss. A failure leaves the old file in place and no
temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path`'s content with `data` (created if missing, mode 0644; an existing file keeps its
    mode), atomically and durably."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            if hasattr(os, "fchmod"):  # WASI (an app built as a component) has no file modes
                os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_text_atomic(path: Path, text: str) -> None:
    """`write_atomic` of `text` encoded as UTF-8."""
    write_atomic(path, text.encode())
