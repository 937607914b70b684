"""The requestor's plan of a proof-of-work task: nonce ranges, who computes them, what they held.

There are `subtasks` ranges (at most CreateTask's max_subtasks_count), so a task needs exactly that many
successful subtasks, whatever its input. Range i covers nonces [i * range_size, (i + 1) * range_size),
range_size = ceil(2**difficulty / subtasks), except the last, which is open-ended: [start, OPEN_END). A
valid nonce turns up about once in 2**difficulty tries, so the open range holds one (its provider searches
until it finds it), and an honest result for it always names one. The answer is the nonce of the lowest
range that held one, once every range below it is verified empty: so it is the smallest valid nonce >= 0,
whatever the split.

On disk a plan is a snapshot (`PLAN_FILE`: the parameters and every range, written whole by `save`, at
CreateTask) and a journal of the range changes since (`JOURNAL_FILE`: one JSON line a change, appended
and flushed to disk by `commit`), so a call writes what it changed, not the whole plan. The journal's first
line names the snapshot generation it continues; a journal of another generation (a `save` interrupted
between its two files) is ignored, and an unfinished last line (a process killed mid-append) is cut off.
`open_plan` keeps the plans this process (or a warm component instance) has read in memory and reads only
the journal lines appended since, so a call's cost does not grow with the task.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import json
import math
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.sdk.atomic_write import write_text_atomic

PLAN_FILE = "tutorialapp-plan.json"
JOURNAL_FILE = "tutorialapp-plan.journal"
OPEN_END = 2**62
"""Where the last range ends: a bound no search reaches (and an exact JSON number everywhere)."""
OPEN_PLANS = 16
"""How many plans `open_plan` keeps in memory (the least recently used is dropped)."""

Change = list[Any]
"""One journal line: `["assign", index, subtask_id]`, `["done", index, nonce]` or `["release", index]`."""


class RangeState(enum.StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    DONE = "done"


class PlanCorrupt(Exception):
    """A plan's files cannot be read back (not written by this module, or damaged)."""


@dataclass
class NonceRange:
    state: RangeState = RangeState.PENDING
    subtask_id: str | None = None
    nonce: int | None = None


@dataclass
class Plan:
    """The ranges, with indexes that keep every query independent of their number.

    Change ranges through `assign`, `complete` and `release`: they keep the indexes and record the change
    for `commit`. Code that edits `ranges` directly must `save` the whole plan afterwards.
    """

    input: str
    difficulty: int
    subtasks: int
    range_size: int
    ranges: list[NonceRange] = field(default_factory=list)
    generation: int = field(default=0, compare=False)
    """Which snapshot this plan was last saved as (the journal names it)."""
    _owners: dict[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)
    _pending: list[int] = field(default_factory=list, init=False, compare=False, repr=False)
    """A heap of range indexes that were pending when pushed (stale entries are skipped when seen)."""
    _hits: list[int] = field(default_factory=list, init=False, compare=False, repr=False)
    """A heap of indexes of done ranges that held a nonce (stale entries skipped likewise)."""
    _done_below: int = field(default=0, init=False, compare=False, repr=False)
    """Every range below this index is done."""
    _changes: list[Change] = field(default_factory=list, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index()

    @classmethod
    def new(cls, text: str, difficulty: int, subtasks: int) -> Plan:
        range_size = max(1, math.ceil(2**difficulty / subtasks))
        return cls(text, difficulty, subtasks, range_size, [NonceRange() for _ in range(subtasks)])

    def _index(self) -> None:
        """Build the indexes from `ranges`."""
        self._owners = {r.subtask_id: i for i, r in enumerate(self.ranges) if r.subtask_id is not None}
        self._pending = [i for i, r in enumerate(self.ranges) if r.state is RangeState.PENDING]
        self._hits = [i for i, r in enumerate(self.ranges) if self._is_hit(i)]
        self._done_below = 0
        self._advance_done()

    def _is_hit(self, index: int) -> bool:
        item = self.ranges[index]
        return item.state is RangeState.DONE and item.nonce is not None

    def _advance_done(self) -> None:
        while self._done_below < len(self.ranges) and self.ranges[self._done_below].state is RangeState.DONE:
            self._done_below += 1

    def _lowest_hit(self) -> int | None:
        while self._hits and not self._is_hit(self._hits[0]):
            heapq.heappop(self._hits)
        return self._hits[0] if self._hits else None

    def _lowest_pending(self) -> int | None:
        while self._pending and self.ranges[self._pending[0]].state is not RangeState.PENDING:
            heapq.heappop(self._pending)
        return self._pending[0] if self._pending else None

    def bounds(self, index: int) -> tuple[int, int]:
        start = index * self.range_size
        return start, OPEN_END if self.is_open(index) else start + self.range_size

    def is_open(self, index: int) -> bool:
        """Whether range `index` is the open-ended last one, which always holds a valid nonce."""
        return index == self.subtasks - 1

    def answer(self) -> int | None:
        """The smallest valid nonce, once it is certain (every range below it done); else None."""
        hit = self._lowest_hit()
        if hit is None or self._done_below <= hit:
            return None
        return self.ranges[hit].nonce

    def next_pending(self) -> int | None:
        """Index of the lowest range worth computing now (none above a range known to hold a nonce)."""
        if self.answer() is not None:
            return None
        lowest_hit = self._lowest_hit()
        pending = self._lowest_pending()
        if pending is None or (lowest_hit is not None and pending > lowest_hit):
            return None
        return pending

    def index_of(self, subtask_id: str) -> int | None:
        return self._owners.get(subtask_id)

    def assign(self, index: int, subtask_id: str) -> None:
        self._assign(index, subtask_id)
        self._changes.append(["assign", index, subtask_id])

    def complete(self, index: int, nonce: int | None) -> None:
        """Record range `index` as done, holding `nonce` (None: no valid nonce in it)."""
        self._complete(index, nonce)
        self._changes.append(["done", index, nonce])

    def release(self, subtask_id: str) -> bool:
        """Make the subtask's range pending again (its result, if any, is forgotten)."""
        index = self.index_of(subtask_id)
        if index is None:
            return False
        self._release(index)
        self._changes.append(["release", index])
        return True

    def _assign(self, index: int, subtask_id: str) -> None:
        previous = self.ranges[index].subtask_id
        if previous is not None:
            self._owners.pop(previous, None)
        self.ranges[index] = NonceRange(RangeState.ASSIGNED, subtask_id)
        self._owners[subtask_id] = index
        if index < self._done_below:
            self._done_below = index

    def _complete(self, index: int, nonce: int | None) -> None:
        item = self.ranges[index]
        item.state, item.nonce = RangeState.DONE, nonce
        if nonce is not None:
            heapq.heappush(self._hits, index)
        self._advance_done()

    def _release(self, index: int) -> None:
        previous = self.ranges[index].subtask_id
        if previous is not None:
            self._owners.pop(previous, None)
        self.ranges[index] = NonceRange()
        heapq.heappush(self._pending, index)
        if index < self._done_below:
            self._done_below = index

    def apply(self, change: Change) -> None:
        """Replay one journal line (without recording it again)."""
        match change:
            case ["assign", int(index), str(subtask_id)] if 0 <= index < len(self.ranges):
                self._assign(index, subtask_id)
            case ["done", int(index), (int() | None) as nonce] if 0 <= index < len(self.ranges):
                self._complete(index, nonce)
            case ["release", int(index)] if 0 <= index < len(self.ranges):
                self._release(index)
            case _:
                raise PlanCorrupt(f"{JOURNAL_FILE} holds a change this plan cannot apply: {change!r}")

    def save(self, task_root: Path) -> None:
        """Write the whole plan as a new snapshot, of a generation above any saved there before, and start
        its journal (empty)."""
        self.generation = max(self.generation, _journal_generation(task_root)) + 1
        snapshot = {
            "input": self.input,
            "difficulty": self.difficulty,
            "subtasks": self.subtasks,
            "range_size": self.range_size,
            "ranges": [
                {"state": r.state.value, "subtask_id": r.subtask_id, "nonce": r.nonce} for r in self.ranges
            ],
            "generation": self.generation,
        }
        write_text_atomic(task_root / PLAN_FILE, json.dumps(snapshot))
        write_text_atomic(task_root / JOURNAL_FILE, _header(self.generation))
        self._changes.clear()

    def commit(self, task_root: Path) -> int:
        """Append the changes made since the last commit or save to the journal, flushed to disk; the
        number of bytes appended."""
        if not self._changes:
            return 0
        lines = "".join(json.dumps(change, separators=(",", ":")) + "\n" for change in self._changes)
        with open(task_root / JOURNAL_FILE, "ab") as journal:
            journal.write(lines.encode())
            journal.flush()
            os.fsync(journal.fileno())
        self._changes.clear()
        return len(lines.encode())

    @classmethod
    def load(cls, task_root: Path) -> Plan:
        """The plan as saved and journalled (a fresh copy, not one `open_plan` holds)."""
        return _read(task_root, repair=False).plan


def _header(generation: int) -> str:
    return json.dumps({"generation": generation}) + "\n"


def _journal_generation(task_root: Path) -> int:
    """The generation the journal's first line names (0 without a journal)."""
    try:
        with open(task_root / JOURNAL_FILE, "rb") as journal:
            header = json.loads(journal.readline())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    generation = header.get("generation") if isinstance(header, dict) else None
    return generation if isinstance(generation, int) else 0


@dataclass
class _Read:
    """A plan as read from its files, and how much of its journal it includes."""

    plan: Plan
    header: bytes
    """The journal's first line, as read (empty: no journal of this snapshot yet)."""
    journal_bytes: int
    """Bytes of the journal applied (header included)."""


def _read(task_root: Path, *, repair: bool) -> _Read:
    data: dict[str, Any] = json.loads((task_root / PLAN_FILE).read_text())
    generation = data.pop("generation", 0)
    ranges = [NonceRange(RangeState(r["state"]), r["subtask_id"], r["nonce"]) for r in data.pop("ranges")]
    read = _Read(Plan(**data, ranges=ranges, generation=generation), b"", 0)
    try:
        journal = (task_root / JOURNAL_FILE).read_bytes()
    except FileNotFoundError:
        return read
    header, _, _ = journal.partition(b"\n")
    if header + b"\n" != _header(generation).encode():
        return read  # another generation's journal: this snapshot already holds what it said
    read.header = header
    read.journal_bytes = len(header) + 1
    _replay(read, journal[read.journal_bytes :], task_root, repair=repair)
    return read


def _replay(read: _Read, tail: bytes, task_root: Path, *, repair: bool) -> None:
    """Apply the complete lines of `tail` (the journal after what `read` includes); with `repair`, cut an
    unfinished last line off the file (the append that wrote it never finished: only the one writer of
    the plan, which calls do one at a time, may tell that from an append in progress)."""
    complete = tail[: tail.rfind(b"\n") + 1]
    for line in complete.splitlines():
        try:
            change = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PlanCorrupt(f"{JOURNAL_FILE} has a line that is not JSON: {line[:200]!r}") from exc
        read.plan.apply(change)
    read.journal_bytes += len(complete)
    if repair and len(complete) < len(tail):
        with open(task_root / JOURNAL_FILE, "r+b") as journal:
            journal.truncate(read.journal_bytes)


_open: OrderedDict[Path, _Read] = OrderedDict()


def _current(task_root: Path) -> Plan:
    """The plan of `task_root`, from memory brought up to date with its journal, else read whole."""
    known = _open.pop(task_root, None)
    if known is not None and known.header:
        with contextlib.suppress(FileNotFoundError), open(task_root / JOURNAL_FILE, "rb") as journal:
            if journal.readline().rstrip(b"\n") == known.header:  # same generation: only appended since
                journal.seek(known.journal_bytes)
                _replay(known, journal.read(), task_root, repair=True)
                _open[task_root] = known
                return known.plan
    read = _read(task_root, repair=True)
    if not read.header:  # no journal of this snapshot yet (a save cut short, or a snapshot alone)
        write_text_atomic(task_root / JOURNAL_FILE, _header(read.plan.generation))
        read.header = _header(read.plan.generation).rstrip("\n").encode()
        read.journal_bytes = len(read.header) + 1
    _open[task_root] = read
    while len(_open) > OPEN_PLANS:
        _open.popitem(last=False)
    return read.plan


@contextlib.contextmanager
def open_plan(task_root: Path) -> Iterator[Plan]:
    """The task's plan for one call: its changes are committed when the block ends; if it raises, they
    are not, and the plan is read again from its files next time."""
    plan = _current(task_root)
    try:
        yield plan
        _open[task_root].journal_bytes += plan.commit(task_root)
    except BaseException:
        _open.pop(task_root, None)
        raise
