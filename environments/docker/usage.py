"""Usage counters of a container from the engine's stats: CPU nanoseconds, peak memory, wall time.

The engine reports stats only while a container lives, so `StatsSampler` follows its stats stream (about one
sample a second) and keeps the last CPU total and the highest memory seen; `snapshot` takes one exact sample
of a container that is still alive (app servers are sampled this way right after their call, before they
are shut down). A snapshot reads the container's cgroup counters directly when the engine runs on this
machine (the same counters the engine reports, without its ~0.3-0.8 s one-shot stats call), else asks the
engine. Peak memory is the cgroup's own high-water mark where there is one (cgroup v1 `max_usage`, v2
`memory.peak`), else the highest usage sampled. Wall time is the engine's StartedAt..FinishedAt.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from environments.base import UsageCounters

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_ns(stats: dict[str, Any]) -> int:
    """Total CPU time of a stats sample, in nanoseconds (0 when the sample has none)."""
    return int((stats.get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage") or 0)


def memory_peak(stats: dict[str, Any]) -> int:
    """The memory high-water mark of a sample (cgroup v1 `max_usage`), else its current usage."""
    memory = stats.get("memory_stats") or {}
    return int(memory.get("max_usage") or memory.get("usage") or 0)


def parse_engine_time(text: str) -> datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds, e.g. 2024-01-01T00:00:00.123456789Z), or None."""
    if not text or text.startswith("0001-"):
        return None
    head, _, fraction = text.rstrip("Z").partition(".")
    fraction = (fraction + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{fraction}+00:00")


def wall_ms(state: dict[str, Any]) -> float:
    """Milliseconds between a container's StartedAt and FinishedAt (0 if it has not finished)."""
    started = parse_engine_time(state.get("StartedAt", ""))
    finished = parse_engine_time(state.get("FinishedAt", ""))
    if started is None or finished is None or finished < started:
        return 0.0
    return (finished - started).total_seconds() * 1000


def _read_int(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


def cgroup_counters(pid: int, root: Path = CGROUP_ROOT) -> dict[str, Any] | None:
    """A stats-shaped sample read from the cgroup of process `pid` (None if it cannot be read here)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path.lstrip("/")
    if "cpuacct" in paths and "memory" in paths:  # cgroup v1
        cpu = _read_int(root / "cpuacct" / paths["cpuacct"] / "cpuacct.usage")
        peak = _read_int(root / "memory" / paths["memory"] / "memory.max_usage_in_bytes")
    elif "" in paths:  # cgroup v2
        unified = root / paths[""]
        usage_usec = None
        with contextlib.suppress(OSError):
            for line in (unified / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    usage_usec = int(line.split()[1])
        cpu = None if usage_usec is None else usage_usec * 1000
        peak = _read_int(unified / "memory.peak") or _read_int(unified / "memory.current")
    else:
        return None
    if cpu is None or peak is None:
        return None
    return {"cpu_stats": {"cpu_usage": {"total_usage": cpu}}, "memory_stats": {"max_usage": peak}}


class StatsSampler:
    """Follows one container's stats stream on a thread of its own until the container stops."""

    def __init__(self, container: Any, pid: int | None = None) -> None:
        self._container = container
        self._pid = pid
        self._lock = threading.Lock()
        self.cpu_ns = 0
        self.peak_memory_bytes = 0
        self._thread = threading.Thread(target=self._follow, name="docker-stats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, stats: dict[str, Any]) -> None:
        """Fold one sample in (CPU only grows; memory keeps its maximum)."""
        with self._lock:
            self.cpu_ns = max(self.cpu_ns, cpu_ns(stats))
            self.peak_memory_bytes = max(self.peak_memory_bytes, memory_peak(stats))

    def snapshot(self) -> None:
        """Take one sample now (the container must still be running)."""
        sample = cgroup_counters(self._pid) if self._pid else None
        if sample is not None:
            self.record(sample)
            return
        with contextlib.suppress(Exception):
            self.record(self._container.stats(stream=False, one_shot=True))

    def _follow(self) -> None:
        with contextlib.suppress(Exception):
            for sample in self._container.stats(stream=True, decode=True):
                self.record(sample)

    def usage(self, wall: float) -> UsageCounters:
        with self._lock:
            return UsageCounters(wall_ms=wall, cpu_ns=self.cpu_ns, peak_memory_bytes=self.peak_memory_bytes)
