"""The requestor's plan of a proof-of-work task: nonce ranges, who computes them, what they held.

There are `subtasks` ranges (at most CreateTask's max_subtasks_count), so a task needs exactly that many
successful subtasks, whatever its input. Range i covers nonces [i * range_size, (i + 1) * range_size),
range_size = ceil(2**difficulty / subtasks), except the last, which is open-ended: [start, OPEN_END). A
valid nonce turns up about once in 2**difficulty tries, so the open range holds one (its provider searches
until it finds it), and an honest result for it always names one. The answer is the nonce of the lowest
range that held one, once every range below it is verified empty: so it is the smallest valid nonce >= 0,
whatever the split.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apps.sdk.atomic_write import write_text_atomic

PLAN_FILE = "tutorialapp-plan.json"
OPEN_END = 2**62
"""Where the last range ends: a bound no search reaches (and an exact JSON number everywhere)."""


class RangeState(enum.StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    DONE = "done"


@dataclass
class NonceRange:
    state: RangeState = RangeState.PENDING
    subtask_id: str | None = None
    nonce: int | None = None


@dataclass
class Plan:
    """Persisted in the task dir after every change."""

    input: str
    difficulty: int
    subtasks: int
    range_size: int
    ranges: list[NonceRange] = field(default_factory=list)

    @classmethod
    def new(cls, text: str, difficulty: int, subtasks: int) -> Plan:
        range_size = max(1, math.ceil(2**difficulty / subtasks))
        return cls(text, difficulty, subtasks, range_size, [NonceRange() for _ in range(subtasks)])

    def bounds(self, index: int) -> tuple[int, int]:
        start = index * self.range_size
        return start, OPEN_END if self.is_open(index) else start + self.range_size

    def is_open(self, index: int) -> bool:
        """Whether range `index` is the open-ended last one, which always holds a valid nonce."""
        return index == self.subtasks - 1

    def answer(self) -> int | None:
        """The smallest valid nonce, once it is certain; else None."""
        for item in self.ranges:
            if item.state is not RangeState.DONE:
                return None
            if item.nonce is not None:
                return item.nonce
        return None

    def next_pending(self) -> int | None:
        """Index of the lowest range worth computing now (none above a range known to hold a nonce)."""
        if self.answer() is not None:
            return None
        lowest_hit = min(
            (
                i
                for i, item in enumerate(self.ranges)
                if item.state is RangeState.DONE and item.nonce is not None
            ),
            default=len(self.ranges),
        )
        return next((i for i in range(lowest_hit) if self.ranges[i].state is RangeState.PENDING), None)

    def index_of(self, subtask_id: str) -> int | None:
        return next((i for i, item in enumerate(self.ranges) if item.subtask_id == subtask_id), None)

    def assign(self, index: int, subtask_id: str) -> None:
        self.ranges[index] = NonceRange(RangeState.ASSIGNED, subtask_id)

    def release(self, subtask_id: str) -> bool:
        """Make the subtask's range pending again (its result, if any, is forgotten)."""
        index = self.index_of(subtask_id)
        if index is None:
            return False
        self.ranges[index] = NonceRange()
        return True

    def save(self, task_root: Path) -> None:
        write_text_atomic(task_root / PLAN_FILE, json.dumps(asdict(self)))

    @classmethod
    def load(cls, task_root: Path) -> Plan:
        data: dict[str, Any] = json.loads((task_root / PLAN_FILE).read_text())
        ranges = [NonceRange(RangeState(r["state"]), r["subtask_id"], r["nonce"]) for r in data.pop("ranges")]
        return cls(**data, ranges=ranges)
