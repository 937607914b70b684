"""What `taskapi run` shows while its task runs: every subtask the requestor knows, by what it waits on.

The node knows the subtasks it has asked the app for, not how many the app will hand out in all, so the
total is "handed out so far". Each one is in exactly one column:

    waiting    asked of the app, or a redundancy copy waiting for a provider (`requested`, `wanted`)
    running    computing on a provider under a lease (`assigned`)
    verifying  delivered, the app's Verify not yet answered (`delivered`)
    accepted   verified (`accepted`)
    failed     rejected, failed, expired, abandoned, aborted or discarded; the app hands its work out again
               (a re-run, under a new subtask id)

Redundancy copies (a second provider computing the same work, `replica_of` set) are counted in those
columns too, and also named apart, so more subtasks than the app's work is never left unexplained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from protos import node_pb2 as npb
from runtime.node.store import SubtaskRow

COLUMNS: dict[str, tuple[str, ...]] = {
    "waiting": ("requested", "wanted"),
    "running": ("assigned",),
    "verifying": ("delivered",),
    "accepted": ("accepted",),
    "failed": ("rejected", "failed", "expired", "abandoned", "aborted", "discarded"),
}


@dataclass(frozen=True)
class Failure:
    """A subtask that did not count: its state, the provider, and why."""

    subtask_id: str
    state: str
    provider_id: str
    reason: str
    copy_of: str | None

    def text(self) -> str:
        copy = f" (redundancy copy of {self.copy_of})" if self.copy_of else ""
        what = f"subtask {self.subtask_id}{copy}"
        where = f" on provider {self.provider_id}" if self.provider_id else ""
        return f"{what} {self.state}{where}: {self.reason or 'no reason given'}"

    def as_json(self) -> dict[str, Any]:
        return {
            "subtask": self.subtask_id,
            "state": self.state,
            "provider": self.provider_id,
            "reason": self.reason,
            "copy_of": self.copy_of,
        }


@dataclass(frozen=True)
class Tally:
    """The subtasks of one task, by column (see the module docstring)."""

    counts: dict[str, int]
    copies: int
    failures: tuple[Failure, ...]

    @classmethod
    def of(cls, rows: Iterable[SubtaskRow]) -> Tally:
        counts = dict.fromkeys(COLUMNS, 0)
        column_of = {state: column for column, states in COLUMNS.items() for state in states}
        copies = 0
        failures = []
        for row in rows:
            column = column_of.get(row.state)
            if column is None:
                continue
            counts[column] += 1
            copies += row.replica_of is not None
            if column == "failed":
                failure = Failure(row.subtask_id, row.state, row.provider_id, row.reason, row.replica_of)
                failures.append(failure)
        return cls(counts, copies, tuple(failures))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def text(self) -> str:
        """`accepted/total accepted`, then the other columns that are not zero, e.g.
        `3/8 accepted, 2 running, 1 failed (re-run), 2 of them redundancy copies`."""
        c = self.counts
        if not self.total:
            return "no subtask handed out yet"
        parts = [f"{c['accepted']}/{self.total} accepted"]
        parts += [f"{c[column]} {column}" for column in ("running", "verifying", "waiting") if c[column]]
        if c["failed"]:
            parts.append(f"{c['failed']} failed (re-run)")
        if self.copies:
            parts.append(f"{self.copies} of them redundancy copies")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {**self.counts, "total": self.total, "redundancy_copies": self.copies}


class RunDisplay:
    """A live progress line on the console (none when `quiet`); `verbose` adds a line per failure."""

    def __init__(self, console: Console, *, quiet: bool, verbose: bool) -> None:
        self.console = console
        self.verbose = verbose and not quiet
        self.last: npb.TaskStatus | None = None
        self.tally = Tally.of(())
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=12),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=quiet,
        )
        self._bar: TaskID | None = None
        self._shown: set[str] = set()

    def __enter__(self) -> RunDisplay:
        self._progress.start()
        self._bar = self._progress.add_task("starting", total=None, counts="app servers and providers")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, status: npb.TaskStatus, rows: list[SubtaskRow]) -> None:
        """Show the task's status and its subtasks now."""
        self.last, self.tally = status, Tally.of(rows)
        if self.verbose:
            for failure in self.tally.failures:
                if failure.subtask_id not in self._shown:
                    self._shown.add(failure.subtask_id)
                    self._progress.console.print(failure.text(), markup=False, highlight=False)
        assert self._bar is not None
        self._progress.update(
            self._bar,
            description=status.app,
            completed=self.tally.counts["accepted"],
            total=self.tally.total or None,
            counts=self.tally.text(),
        )

    @property
    def running(self) -> int:
        """Subtasks computing on providers or being verified at the last update."""
        return self.tally.counts["running"] + self.tally.counts["verifying"]
