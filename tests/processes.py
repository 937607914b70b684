"""What tests read about this machine's processes from /proc."""

from __future__ import annotations

from pathlib import Path


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left (a container's init may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def children(pid: int) -> list[int]:
    """The processes `pid` started, from any of its threads (the wasm pool starts its workers from one)."""
    return [
        int(child)
        for thread in Path(f"/proc/{pid}/task").iterdir()
        for child in (thread / "children").read_text().split()
    ]


def command_line(pid: int) -> str:
    """The process's arguments joined by spaces, or '' once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except FileNotFoundError:
        return ""
