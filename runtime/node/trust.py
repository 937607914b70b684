"""Provider trust, persisted in SQLite: what each provider's results showed, and how often to re-execute them.

Adaptive replication (BOINC's idea, on deterministic re-execution instead of replicas): a provider's
`clean` streak counts its results accepted since its last failure. While it is shorter than the probation,
every wasm result is re-executed; after that the re-execution rate is `probation / clean`, down to a floor.
A Verify failure divides the streak (the rate rises again); a forgery (a re-execution that differs) zeroes
it, drops the provider from that task and, with `blacklist`, from every task. A provider whose benchmark
claim is far above the speed its subtasks show is re-executed at least at `inflated_rate`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from runtime.node.store import now_ms

SCHEMA = """
CREATE TABLE IF NOT EXISTS trust (
    provider_id TEXT PRIMARY KEY,
    clean INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0,
    reexecuted INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    forged INTEGER NOT NULL DEFAULT 0,
    blacklisted INTEGER NOT NULL DEFAULT 0,
    claimed_score REAL NOT NULL DEFAULT 0,
    best_speed REAL NOT NULL DEFAULT 0,
    speed_samples INTEGER NOT NULL DEFAULT 0,
    benchmark_inflated INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped (
    provider_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    dropped_ms INTEGER NOT NULL,
    PRIMARY KEY (provider_id, task_id)
);
"""


@dataclass(frozen=True)
class TrustPolicy:
    """How trust moves the re-execution rate."""

    probation: int = 10
    """Results re-executed in full before sampling starts."""
    floor: float = 0.05
    """The lowest re-execution rate, reached at `probation / floor` clean results."""
    failure_divisor: int = 4
    """A Verify failure divides the clean streak by this (the rate rises that much)."""
    inflated_rate: float = 0.5
    """The lowest re-execution rate of a provider whose benchmark claim is inflated."""
    blacklist: bool = False
    """A provider caught forging is refused every task, not only the one it forged in."""
    speed_tolerance: float = 20.0
    """A benchmark claim above this multiple of the best speed seen is inflated. Generous: the benchmark
    kernel runs 3-4x more fuel per second than typical app code, and the time seen includes transfers."""
    speed_min_ms: int = 250
    """Subtasks that took less time (assignment to delivery) say nothing about speed: fixed overheads
    dominate them."""
    speed_min_fuel: int = 1_000_000_000
    """Subtasks that used less fuel say nothing about speed, however long they took: their time is the node's
    fixed cost per subtask (round trips, instantiation, verification), not work, so judging them would flag an
    honest provider of tiny subtasks. A bound in fuel, not in the claim, so no claim is too big to be judged;
    1e9 fuel is 0.1-0.4 s of tutorialapp hashing here."""
    speed_min_samples: int = 3
    """Subtasks with enough fuel needed before a claim is judged."""


@dataclass(frozen=True)
class TrustRecord:
    """One provider's standing."""

    provider_id: str
    clean: int = 0
    accepted: int = 0
    reexecuted: int = 0
    rejected: int = 0
    forged: int = 0
    blacklisted: bool = False
    claimed_score: float = 0.0
    best_speed: float = 0.0
    speed_samples: int = 0
    benchmark_inflated: bool = False

    @property
    def share(self) -> float:
        """Share of its judged results that passed (1.0 before any was judged)."""
        judged = self.accepted + self.rejected + self.forged
        return self.accepted / judged if judged else 1.0

    @property
    def score(self) -> float:
        """The trust shown to operators: the share, halved while the benchmark claim is inflated."""
        return self.share / 2 if self.benchmark_inflated else self.share


def sample_rate(record: TrustRecord, policy: TrustPolicy) -> float:
    """Probability that the provider's next wasm result is re-executed."""
    if record.forged or record.clean < policy.probation:
        return 1.0
    rate = max(policy.floor, min(1.0, policy.probation / max(1, record.clean)))
    return max(rate, policy.inflated_rate) if record.benchmark_inflated else rate


def is_inflated(claimed: float, best_speed: float, samples: int, policy: TrustPolicy) -> bool:
    """Whether a benchmark claim (Mfuel/s) is beyond belief given the best speed seen on real subtasks."""
    if claimed <= 0 or samples < policy.speed_min_samples:
        return False
    return claimed > policy.speed_tolerance * best_speed


def _record(row: sqlite3.Row) -> TrustRecord:
    return TrustRecord(
        row["provider_id"],
        row["clean"],
        row["accepted"],
        row["reexecuted"],
        row["rejected"],
        row["forged"],
        bool(row["blacklisted"]),
        row["claimed_score"],
        row["best_speed"],
        row["speed_samples"],
        bool(row["benchmark_inflated"]),
    )


class TrustStore:
    """The `trust` and `dropped` tables; every method commits before it returns.

    Reads are answered from memory: each provider's record as its last write returned it (`RETURNING`),
    and every drop, all read once at start. So the store must be its database's only writer, as a
    requestor's is (other processes only read it).
    """

    def __init__(self, db: sqlite3.Connection, policy: TrustPolicy) -> None:
        self._db = db
        self.policy = policy
        db.executescript(SCHEMA)
        self._records: dict[str, TrustRecord] = {}
        self._dropped: set[tuple[str, str]] = {
            (str(row[0]), str(row[1])) for row in db.execute("SELECT provider_id, task_id FROM dropped")
        }

    def get(self, provider_id: str) -> TrustRecord:
        record = self._records.get(provider_id)
        if record is None:
            row = self._db.execute("SELECT * FROM trust WHERE provider_id = ?", (provider_id,)).fetchone()
            record = TrustRecord(provider_id) if row is None else _record(row)
            self._records[provider_id] = record
        return record

    def _update(self, provider_id: str, assignments: str, args: tuple[object, ...] = ()) -> None:
        """One UPDATE of the provider's row (its first write inserts the row first); `get` answers with
        the record the UPDATE returned from then on."""
        update = f"UPDATE trust SET {assignments}, updated_ms = ? WHERE provider_id = ? RETURNING *"
        values = (*args, now_ms(), provider_id)
        row = self._db.execute(update, values).fetchone()
        if row is None:
            self._db.execute(
                "INSERT OR IGNORE INTO trust (provider_id, updated_ms) VALUES (?, ?)", (provider_id, now_ms())
            )
            row = self._db.execute(update, values).fetchone()
        self._records[provider_id] = _record(row)

    def _add_drop(self, provider_id: str, task_id: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO dropped (provider_id, task_id, reason, dropped_ms) VALUES (?, ?, ?, ?)",
            (provider_id, task_id, reason, now_ms()),
        )
        self._dropped.add((provider_id, task_id))

    def accepted(self, provider_id: str, reexecuted: bool) -> None:
        """A result passed: the app's Verify, and its re-execution if it had one."""
        self._update(
            provider_id,
            "clean = clean + 1, accepted = accepted + 1, reexecuted = reexecuted + ?",
            (int(reexecuted),),
        )

    def rejected(self, provider_id: str) -> None:
        """The app's Verify failed the result: the streak shrinks, so the rate rises."""
        self._update(
            provider_id, "clean = clean / ?, rejected = rejected + 1", (max(1, self.policy.failure_divisor),)
        )

    def forged(
        self, provider_id: str, task_id: str, reason: str, count: int = 1, was_accepted: int = 0
    ) -> None:
        """Re-execution proved `count` results forged (`was_accepted` of them had been accepted unchecked).

        The provider is dropped from the task, and blacklisted where the policy says so.
        """
        self._update(
            provider_id,
            "clean = 0, forged = forged + ?, accepted = MAX(0, accepted - ?),"
            " blacklisted = MAX(blacklisted, ?)",
            (count, was_accepted, int(self.policy.blacklist)),
        )
        self._add_drop(provider_id, task_id, reason)

    def drop(self, provider_id: str, task_id: str, reason: str) -> None:
        """Stop assigning the task's subtasks to the provider (persists across restarts)."""
        self._add_drop(provider_id, task_id, reason)

    def excluded(self, provider_id: str, task_id: str) -> bool:
        """Whether the provider may not take this task's subtasks (dropped from it, or blacklisted)."""
        return (provider_id, task_id) in self._dropped or self.get(provider_id).blacklisted

    def drops(self) -> list[tuple[str, str, str]]:
        """Every drop as (provider id, task id, reason), oldest first."""
        rows = self._db.execute(
            "SELECT provider_id, task_id, reason FROM dropped ORDER BY dropped_ms"
        ).fetchall()
        return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]

    def dropped_from(self, task_id: str) -> set[str]:
        return {provider_id for provider_id, dropped_task in self._dropped if dropped_task == task_id}

    def speed(self, provider_id: str, claimed: float, observed: float) -> bool:
        """Record one subtask's observed speed (Mfuel/s) against the claim; return whether it is inflated."""
        record = self.get(provider_id)
        best = max(record.best_speed, observed)
        samples = record.speed_samples + 1
        inflated = is_inflated(claimed, best, samples, self.policy)
        self._update(
            provider_id,
            "claimed_score = ?, best_speed = ?, speed_samples = ?, benchmark_inflated = ?",
            (claimed, best, samples, int(inflated)),
        )
        return inflated
