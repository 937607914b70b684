"""The requestor's plan of a proof-of-work task: nonce ranges, who computes them, what they held.

There are `subtasks` ranges (at most CreateTask's max_subtasks_count), so a task needs exactly that many
successful subtasks, whatever its input. Range i covers nonces [i * range_size, (i + 1) * range_size),
range_size = ceil(2**difficulty / subtasks), except the last, which is open-ended: [start, OPEN_END). A
valid nonce turns up about once in 2**difficulty tries, so the open range holds one (its provider searches
until it finds it), and an honest result for it always names one; it is handed out only once every range
below it is done (see `next_pending`). The answer is the nonce of the lowest range that held one, once every
range below it is verified empty: so it is the smallest valid nonce >= 0, whatever the split.

On disk a plan is an `apps.sdk.journal.Journal`: a snapshot (`PLAN_FILE`: the parameters and every range,
written whole by `save`, at CreateTask) and a journal of the range changes since (`JOURNAL_FILE`: one JSON
line a change, appended and flushed to disk by `commit`), so a call writes what it changed, not the whole
plan. `open_plan` keeps the plans this process (or a warm component instance) has read in memory and reads
only the journal lines appended since, so a call's cost does not grow with the task.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.sdk.journal import Journal, Position

PLAN_NAME = "tutorialapp-plan"
PLAN_FILE = f"{PLAN_NAME}.json"
JOURNAL_FILE = f"{PLAN_NAME}.journal"
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
        """Index of the lowest range worth computing now (none above a range known to hold a nonce).

        The open-ended last range waits until every range below it is done: it is searched until a nonce
        turns up, which is wasted work whenever a range below holds one, so a second provider must not start
        it while the first may still find the answer lower down.
        """
        if self.answer() is not None:
            return None
        lowest_hit = self._lowest_hit()
        pending = self._lowest_pending()
        if pending is None or (lowest_hit is not None and pending > lowest_hit):
            return None
        if self.is_open(pending) and self._done_below < pending:
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
        ranges = [{"state": r.state.value, "subtask_id": r.subtask_id, "nonce": r.nonce} for r in self.ranges]
        snapshot = {
            "input": self.input,
            "difficulty": self.difficulty,
            "subtasks": self.subtasks,
            "range_size": self.range_size,
            "ranges": ranges,
        }
        self.generation, _ = plan_journal(task_root).save(snapshot, self.generation)
        self._changes.clear()

    def commit(self, task_root: Path, position: Position) -> None:
        """Append the changes made since the last commit or save to the journal, flushed to disk."""
        plan_journal(task_root).append(self._changes, position)
        self._changes.clear()

    @classmethod
    def load(cls, task_root: Path) -> Plan:
        """The plan as saved and journalled (a fresh copy, not one `open_plan` holds)."""
        return _read(task_root, repair=False)[0]


def plan_journal(task_root: Path) -> Journal:
    return Journal(task_root, PLAN_NAME)


def _read(task_root: Path, *, repair: bool) -> tuple[Plan, Position | None]:
    """The plan from its files, and the journal's position (None: the snapshot has no journal yet)."""
    data, generation, changes, position = plan_journal(task_root).read(repair=repair)
    ranges = [NonceRange(RangeState(r["state"]), r["subtask_id"], r["nonce"]) for r in data.pop("ranges")]
    plan = Plan(**data, ranges=ranges, generation=generation)
    for change in changes:
        plan.apply(change)
    return plan, position


_open: OrderedDict[Path, tuple[Plan, Position]] = OrderedDict()
"""The plans `open_plan` holds, with how much of their journals they include."""


def _current(task_root: Path) -> tuple[Plan, Position]:
    """The plan of `task_root`, from memory brought up to date with its journal, else read whole."""
    known = _open.pop(task_root, None)
    if known is not None:
        plan, position = known
        changes = plan_journal(task_root).read_since(position)
        if changes is not None:
            for change in changes:
                plan.apply(change)
            _open[task_root] = plan, position
            return plan, position
    plan, maybe_position = _read(task_root, repair=True)
    position = maybe_position or plan_journal(task_root).start(plan.generation)
    _open[task_root] = plan, position
    while len(_open) > OPEN_PLANS:
        _open.popitem(last=False)
    return plan, position


@contextlib.contextmanager
def open_plan(task_root: Path) -> Iterator[Plan]:
    """The task's plan for one call: its changes are committed when the block ends; if it raises, they
    are not, and the plan is read again from its files next time."""
    plan, position = _current(task_root)
    try:
        yield plan
        plan.commit(task_root, position)
    except BaseException:
        _open.pop(task_root, None)
        raise
