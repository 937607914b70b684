"""The output quota of one run: what its writable preopens may hold, enforced three ways.

1. `RLIMIT_FSIZE` of the worker process is `output_bytes + 1` while the run lasts, so no single file
   (sparse or not) grows past the quota: the write fails with EFBIG. Workers catch SIGXFSZ (never its
   default, which kills) with `catch_refused_writes`, so that such a refusal also names the quota.
2. A watchdog thread measures the writable preopens every `POLL_S` (less often when measuring takes long:
   it spends at most a tenth of its time measuring) and, once they hold more than
   `output_bytes` or more than `output_files` entries, interrupts the run through `interrupt` (the
   executor advances the engine's epoch past the store's deadline).
3. A last measurement when the run has ended, which the run's verdict uses.

Measuring never follows a link: a link counts as one entry of its own size.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from environments.wasm.runs import WasmLimits

POLL_S = 0.02
MEASURING_SHARE = 0.1
"""The most of its time the watchdog spends measuring (folders with many files are measured less often)."""

_write_refused = threading.Event()
"""Set by SIGXFSZ: a write went past RLIMIT_FSIZE and was refused with EFBIG."""


def catch_refused_writes() -> None:
    """Note writes refused by RLIMIT_FSIZE (SIGXFSZ) instead of dying of them (call in the main thread)."""
    signal.signal(signal.SIGXFSZ, lambda signum, frame: _write_refused.set())


@dataclass(frozen=True)
class OutputUsage:
    """What writable folders hold: their files' sizes together, and their entries (files, folders, links)."""

    bytes: int
    entries: int


def measure(roots: list[Path], limits: WasmLimits) -> OutputUsage:
    """Sizes and entries under `roots`; stops counting as soon as either is over its limit."""
    total = entries = 0
    pending = list(roots)
    while pending and total <= limits.output_bytes and entries <= limits.output_files:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as listing:
            for entry in listing:
                entries += 1
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
    return OutputUsage(total, entries)


def overrun(usage: OutputUsage, limits: WasmLimits) -> str | None:
    """Why `usage` is over the quota, or None."""
    if usage.bytes > limits.output_bytes:
        return (
            f"output limit of {limits.output_bytes} bytes reached: the writable folders held "
            f"{usage.bytes} bytes or more"
        )
    if usage.entries > limits.output_files:
        return (
            f"output file limit of {limits.output_files} files reached: the writable folders held "
            f"{usage.entries} entries or more"
        )
    return None


def distinct_roots(roots: list[Path]) -> list[Path]:
    """`roots` without those inside another one (each file is counted once)."""
    resolved = sorted({root.resolve() for root in roots}, key=lambda path: len(path.parts))
    kept: list[Path] = []
    for root in resolved:
        if not any(root.is_relative_to(outer) for outer in kept):
            kept.append(root)
    return kept


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Lower this process's RLIMIT_FSIZE to `limit` bytes (never above its hard limit) for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    lowered = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (lowered, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


class OutputWatch:
    """Keeps one run within its output quota; `overrun` says why it was not, once the run has ended."""

    def __init__(self, roots: list[Path], limits: WasmLimits, interrupt: Callable[[], None]) -> None:
        self._roots = distinct_roots(roots)
        self._limits = limits
        self._interrupt = interrupt
        self._stop = threading.Event()
        self.overrun: str | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Enforce the quota while the block (the run) lasts, then take the last measurement."""
        if not self._roots:
            yield
            return
        watchdog = threading.Thread(target=self._watch, name="wasm-output-watch", daemon=True)
        _write_refused.clear()
        with file_size_limit(self._limits.output_bytes + 1):
            watchdog.start()
            try:
                yield
            finally:
                self._stop.set()
                watchdog.join()
        if self.overrun is None and _write_refused.is_set():
            self.overrun = (
                f"output limit of {self._limits.output_bytes} bytes reached: "
                "a write past it was refused (EFBIG)"
            )
        self.overrun = self.overrun or overrun(measure(self._roots, self._limits), self._limits)

    def _watch(self) -> None:
        pause = POLL_S
        while not self._stop.wait(pause):
            started = time.monotonic()
            reason = overrun(measure(self._roots, self._limits), self._limits)
            if reason is not None:
                self.overrun = reason
                self._interrupt()
                return
            pause = max(POLL_S, (time.monotonic() - started) / MEASURING_SHARE)
