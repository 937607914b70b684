"""The requestor's plan of a proof-of-work task: nonce ranges, who computes them, what they held.

Range i covers nonces [i * range_size, (i + 1) * range_size). A round is `subtasks` consecutive
ranges; the first round is open from the start, and a further round opens only when every open
range was verified and none held a valid nonce. The answer is the nonce of the lowest range that
held one, once every range below it is verified empty: so it is the smallest valid nonce >= 0,
whatever the split.
"""

from __future__ import annotations

import enum
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLAN_FILE = "tutorialapp-plan.json"


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
    open_rounds: int = 1
    ranges: list[NonceRange] = field(default_factory=list)

    @classmethod
    def new(cls, text: str, difficulty: int, subtasks: int) -> Plan:
        range_size = max(1, math.ceil(2**difficulty / subtasks))
        return cls(text, difficulty, subtasks, range_size, 1, [NonceRange() for _ in range(subtasks)])

    def bounds(self, index: int) -> tuple[int, int]:
        return index * self.range_size, (index + 1) * self.range_size

    def answer(self) -> int | None:
        """The smallest valid nonce, once it is certain; else None."""
        for item in self.ranges:
            if item.state is not RangeState.DONE:
                return None
            if item.nonce is not None:
                return item.nonce
        return None

    def next_pending(self) -> int | None:
        """Index of the lowest range worth computing now, opening a new round when the last came up empty."""
        if self.answer() is not None:
            return None
        if all(item.state is RangeState.DONE and item.nonce is None for item in self.ranges):
            self.open_rounds += 1
            self.ranges.extend(NonceRange() for _ in range(self.subtasks))
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
        tmp = task_root / (PLAN_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, task_root / PLAN_FILE)

    @classmethod
    def load(cls, task_root: Path) -> Plan:
        data: dict[str, Any] = json.loads((task_root / PLAN_FILE).read_text())
        ranges = [NonceRange(RangeState(r["state"]), r["subtask_id"], r["nonce"]) for r in data.pop("ranges")]
        return cls(**data, ranges=ranges)
