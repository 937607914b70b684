"""Which node process a container belongs to, so that containers of a node that died can be removed.

Every container carries `org.taskapi.owner` = "<boot id>/<pid namespace>/<pid>/<process start time>" of the
process that created it. A node that prepares its docker environment removes the containers whose owner
ran on this machine, in this boot and pid namespace, and is gone (no such pid, or the pid now names another
process). Containers of live processes, of other machines sharing the engine, of other pid namespaces or of
an earlier boot are left alone: their owner cannot be checked from here.
"""

from __future__ import annotations

import os
from pathlib import Path

OWNER_LABEL = "org.taskapi.owner"


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _pid_namespace() -> str:
    return os.readlink("/proc/self/ns/pid")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_of(pid: int) -> str:
    """The owner label of a container created by process `pid` (normally this one); empty where /proc
    cannot tell (such containers are never removed as orphans)."""
    try:
        return f"{_boot_id()}/{_pid_namespace()}/{pid}/{_start_time(pid)}"
    except OSError:
        return ""


def is_gone(owner: str) -> bool:
    """Whether the owner process is known to be gone: on this machine, boot and pid namespace, and not
    running (its pid is free or names a process that started at another time)."""
    try:
        boot, namespace, pid, started = owner.split("/")
        same_place = (boot, namespace) == (_boot_id(), _pid_namespace())
        return same_place and _start_time(int(pid)) != started
    except (ValueError, OSError):
        return False
