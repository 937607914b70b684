"""Usage counters of a container from the engine's stats: CPU nanoseconds, peak memory, wall time.

The engine reports stats only while a container lives, so `StatsSampler` follows its stats stream (about one
sample a second) and keeps the last CPU total and the highest memory seen; `snapshot` takes one exact sample
of a container that is still alive (app servers are sampled this way right after their call, before they
are shut down). Peak memory is the cgroup's own high-water mark where the engine reports it (cgroup v1's
`max_usage`), else the highest usage sampled. Wall time is the engine's StartedAt..FinishedAt.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from typing import Any

from environments.base import UsageCounters


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


class StatsSampler:
    """Follows one container's stats stream on a thread of its own until the container stops."""

    def __init__(self, container: Any) -> None:
        self._container = container
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
        with contextlib.suppress(Exception):
            self.record(self._container.stats(stream=False, one_shot=True))

    def _follow(self) -> None:
        with contextlib.suppress(Exception):
            for sample in self._container.stats(stream=True, decode=True):
                self.record(sample)

    def usage(self, wall: float) -> UsageCounters:
        with self._lock:
            return UsageCounters(wall_ms=wall, cpu_ns=self.cpu_ns, peak_memory_bytes=self.peak_memory_bytes)
