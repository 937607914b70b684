"""The requestor's SQLite store (WAL): tasks, subtasks and providers, written before every acknowledgement.

Task and subtask states (the node's view; the app keeps its own in its work dir) are the enums of
states.py. Every state write is conditional on the transition table there: a write it forbids changes
nothing and raises `IllegalTransition`, logged with the subtask's history (every state it was written
in, kept in `subtask_history`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.node.row_cache import RowCache
from runtime.node.schema import Migration, columns, execute_ddl, migrate, use_wal
from runtime.node.states import (
    FAILURE_STATES,
    SUBTASK_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    SubtaskState,
    TaskState,
    sources,
)

log = logging.getLogger(__name__)

FIRST_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    app_id TEXT NOT NULL,
    env_id TEXT NOT NULL,
    params_json TEXT NOT NULL,
    max_subtasks INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    prerequisites_json TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE TABLE IF NOT EXISTS subtasks (
    subtask_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(task_id),
    state TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    params_json TEXT NOT NULL DEFAULT '{}',
    resources_json TEXT NOT NULL DEFAULT '[]',
    deadline_ms INTEGER NOT NULL DEFAULT 0,
    result_name TEXT,
    result_sha256 TEXT,
    wall_ms INTEGER NOT NULL DEFAULT 0,
    cpu_ns INTEGER NOT NULL DEFAULT 0,
    fuel INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subtasks_by_task ON subtasks(task_id, state);
CREATE TABLE IF NOT EXISTS providers (
    provider_id TEXT PRIMARY KEY,
    offer_json TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
"""


def _first_schema(db: sqlite3.Connection) -> None:
    execute_ddl(db, FIRST_SCHEMA)


# Stores written before schema versions existed are at version 0 whatever their shape, and may have had
# the next two columns already: those steps check before adding.


def _replicas(db: sqlite3.Connection) -> None:
    if "replica_of" not in columns(db, "subtasks"):
        db.execute("ALTER TABLE subtasks ADD COLUMN replica_of TEXT")


def _memory_needs(db: sqlite3.Connection) -> None:
    if "min_memory_mib" not in columns(db, "tasks"):
        db.execute("ALTER TABLE tasks ADD COLUMN min_memory_mib INTEGER NOT NULL DEFAULT 0")


def _history(db: sqlite3.Connection) -> None:
    """Every state a subtask was written in (its current one, for the subtasks already there)."""
    execute_ddl(
        db,
        """
        CREATE INDEX IF NOT EXISTS subtasks_by_provider ON subtasks(provider_id, state);
        CREATE TABLE subtask_history (
            subtask_id TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            at_ms INTEGER NOT NULL
        );
        CREATE INDEX subtask_history_by_id ON subtask_history(subtask_id);
        INSERT INTO subtask_history (subtask_id, state, reason, at_ms)
            SELECT subtask_id, state, reason, updated_ms FROM subtasks ORDER BY rowid
        """,
    )


def _result_info(db: sqlite3.Connection) -> None:
    """What the app reported about each accepted result (apps/sdk/result_info.py)."""
    db.execute("ALTER TABLE subtasks ADD COLUMN result_info_json TEXT NOT NULL DEFAULT '{}'")


def _history_by_trigger(db: sqlite3.Connection) -> None:
    """The database records each state a subtask is written in, in the statement that writes it: one
    statement a transition instead of two, and no state without its history row after a crash."""
    record = (
        "INSERT INTO subtask_history (subtask_id, state, reason, at_ms)"
        " VALUES (NEW.subtask_id, NEW.state, NEW.reason, NEW.updated_ms)"
    )
    db.execute(f"CREATE TRIGGER subtask_history_on_insert AFTER INSERT ON subtasks BEGIN {record}; END")
    db.execute(
        f"CREATE TRIGGER subtask_history_on_update AFTER UPDATE OF state ON subtasks BEGIN {record}; END"
    )


def _app_verdicts(db: sqlite3.Connection) -> None:
    """The app's own verdict on each result, kept as it arrives: a requestor that restarts before its
    ladder (re-execution, trust) ended cannot ask the app again, which refuses a second Verify."""
    db.execute("ALTER TABLE subtasks ADD COLUMN app_verdict TEXT")
    db.execute("ALTER TABLE subtasks ADD COLUMN app_reason TEXT NOT NULL DEFAULT ''")


def _forgiven_failures(db: sqlite3.Connection) -> None:
    """Which failures did not count against their task's budget (their provider was already shut out of
    it): a restarted requestor counts the others alone, as before it stopped."""
    db.execute("ALTER TABLE subtasks ADD COLUMN forgiven INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: tuple[Migration, ...] = (
    _first_schema,
    _replicas,
    _memory_needs,
    _history,
    _result_info,
    _history_by_trigger,
    _app_verdicts,
    _forgiven_failures,
)
"""The store's schema, version by version: `PRAGMA user_version` counts those a store has had."""


def now_ms() -> int:
    """The one time unit of the store: unix epoch milliseconds."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    app: str
    app_id: str
    env_id: str
    params: dict[str, Any]
    max_subtasks: int
    state: TaskState
    reason: str
    prerequisites: dict[str, Any]
    created_ms: int = 0
    finished_ms: int | None = None
    min_memory_mib: int = 0


@dataclass(frozen=True)
class ProviderRow:
    provider_id: str
    offer: dict[str, Any]
    last_seen_ms: int


@dataclass(frozen=True)
class SubtaskRow:
    subtask_id: str
    task_id: str
    state: SubtaskState
    provider_id: str
    params_json: str
    resources: list[dict[str, Any]]
    deadline_ms: int
    result_name: str | None
    fuel: int
    cpu_ns: int
    result_sha256: str | None = None
    wall_ms: int = 0
    updated_ms: int = 0
    replica_of: str | None = None
    reason: str = ""
    forgiven: bool = False
    """A failure that did not count against its task's budget (scheduling.SetState)."""


class Store:
    """One SQLite connection; every method commits before it returns (inside `transaction()`: with it).

    The store is its database's only writer: it keeps the subtask rows it read, amended by its own writes
    (`RowCache`), so reading a subtask again costs no statement.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        use_wal(self._db)
        self._db.execute("PRAGMA foreign_keys=ON")
        migrate(self._db, path, MIGRATIONS)
        self._subtasks: RowCache[SubtaskRow] = RowCache()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The store's writes inside commit together or not at all (a rollback drops the kept rows, which
        may show its writes). Write through the store's methods: a row written through the yielded
        connection directly is not seen by `subtask()` while an older copy of it is kept."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            self._subtasks.clear()
            raise
        self._db.execute("COMMIT")

    # tasks

    def add_task(self, row: TaskRow) -> None:
        self._db.execute(
            "INSERT INTO tasks (task_id, app, app_id, env_id, params_json, max_subtasks, state, reason,"
            " prerequisites_json, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.task_id,
                row.app,
                row.app_id,
                row.env_id,
                json.dumps(row.params),
                row.max_subtasks,
                row.state,
                row.reason,
                json.dumps(row.prerequisites),
                now_ms(),
            ),
        )

    def set_task_state(self, task_id: str, state: TaskState, reason: str = "") -> None:
        """Move a task to `state`; IllegalTransition (nothing written) if its table forbids it."""
        allowed = sources(TASK_TRANSITIONS, state)
        cursor = self._db.execute(
            f"UPDATE tasks SET state = ?, reason = ?, finished_ms = ? WHERE task_id = ?"
            f" AND state IN ({','.join('?' * len(allowed))})",
            (state, reason, now_ms(), task_id, *allowed),
        )
        if not cursor.rowcount:
            row = self.task(task_id)
            current = None if row is None else row.state
            error = IllegalTransition(f"task {task_id}", current, state, [] if current is None else [current])
            log.error("refused: %s", error)
            raise error

    def set_task_prerequisites(self, task_id: str, env_id: str, prerequisites: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE tasks SET env_id = ?, prerequisites_json = ? WHERE task_id = ?",
            (env_id, json.dumps(prerequisites), task_id),
        )

    def set_task_min_memory(self, task_id: str, min_memory_mib: int) -> None:
        """The memory a provider must offer for the task, as its app's CreateTask answered."""
        self._db.execute("UPDATE tasks SET min_memory_mib = ? WHERE task_id = ?", (min_memory_mib, task_id))

    def task(self, task_id: str) -> TaskRow | None:
        row = self._db.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else _task_row(row)

    def tasks(self, state: str | None = None) -> list[TaskRow]:
        if state is None:
            rows = self._db.execute("SELECT * FROM tasks ORDER BY created_ms").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE state = ? ORDER BY created_ms", (state,)
            ).fetchall()
        return [_task_row(row) for row in rows]

    # subtasks

    def add_subtask(self, subtask_id: str, task_id: str, provider_id: str) -> None:
        """Record the intent to ask the app for a subtask under this id (before the app is asked)."""
        self._db.execute(
            "INSERT INTO subtasks (subtask_id, task_id, state, provider_id, updated_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (subtask_id, task_id, SubtaskState.REQUESTED, provider_id, now_ms()),
        )

    def assign_subtask(
        self, subtask_id: str, params_json: str, resources: list[dict[str, Any]], deadline_ms: int
    ) -> None:
        self._transition(
            subtask_id,
            SubtaskState.ASSIGNED,
            params_json=params_json,
            resources=resources,
            deadline_ms=deadline_ms,
        )

    def want_replica(self, replica_id: str, primary: SubtaskRow) -> None:
        """Record a replica of `primary` (same parameters and resources) waiting for a provider."""
        self._db.execute(
            "INSERT INTO subtasks (subtask_id, task_id, state, provider_id, params_json, resources_json,"
            " updated_ms, replica_of) VALUES (?, ?, ?, '', ?, ?, ?, ?)",
            (
                replica_id,
                primary.task_id,
                SubtaskState.WANTED,
                primary.params_json,
                json.dumps(primary.resources),
                now_ms(),
                primary.subtask_id,
            ),
        )

    def take_replica(self, replica_id: str, provider_id: str, deadline_ms: int) -> None:
        self._transition(replica_id, SubtaskState.ASSIGNED, provider_id=provider_id, deadline_ms=deadline_ms)

    def copies(self, primary_id: str) -> list[SubtaskRow]:
        """A primary and all its replicas, in creation order."""
        rows = self._db.execute(
            "SELECT * FROM subtasks WHERE subtask_id = ? OR replica_of = ? ORDER BY rowid",
            (primary_id, primary_id),
        ).fetchall()
        return [_subtask_row(row) for row in rows]

    def set_subtask_state(
        self, subtask_id: str, state: SubtaskState, reason: str = "", forgiven: bool = False
    ) -> None:
        """Move a subtask to `state` (`forgiven`: a failure its task's budget does not count);
        IllegalTransition (nothing written) if the table forbids it."""
        self._transition(subtask_id, state, reason=reason, forgiven=forgiven)

    def _transition(self, subtask_id: str, state: SubtaskState, reason: str = "", **fields: Any) -> None:
        """One conditional UPDATE: the row changes only from a state that may become `state`. Its reason
        becomes `reason` (a transition's own), the `SubtaskRow` fields named take their new values, and a
        trigger records the new state in `subtask_history`."""
        allowed = sources(SUBTASK_TRANSITIONS, state)
        columns = dict(_column(name, value) for name, value in fields.items())
        updated_ms = now_ms()
        sets = "".join(f"{column} = ?, " for column in columns)
        cursor = self._db.execute(
            f"UPDATE subtasks SET state = ?, reason = ?, {sets}updated_ms = ?"
            f" WHERE subtask_id = ? AND state IN ({','.join('?' * len(allowed))})",
            (state, reason, *columns.values(), updated_ms, subtask_id, *allowed),
        )
        if not cursor.rowcount:
            row = self.subtask(subtask_id)
            error = IllegalTransition(
                f"subtask {subtask_id}", None if row is None else row.state, state, self.history(subtask_id)
            )
            log.error("refused: %s", error)
            raise error
        self._subtasks.amend(
            subtask_id, state=SubtaskState(state), reason=reason, updated_ms=updated_ms, **fields
        )

    def history(self, subtask_id: str) -> list[str]:
        """Every state the subtask was written in, oldest first."""
        rows = self._db.execute(
            "SELECT state FROM subtask_history WHERE subtask_id = ? ORDER BY rowid", (subtask_id,)
        ).fetchall()
        return [row["state"] for row in rows]

    def forget_subtask(self, subtask_id: str) -> None:
        """Drop a request the app answered with "no subtask"."""
        cursor = self._db.execute(
            "DELETE FROM subtasks WHERE subtask_id = ? AND state = ?", (subtask_id, SubtaskState.REQUESTED)
        )
        self._subtasks.forget(subtask_id)
        if cursor.rowcount:
            self._db.execute("DELETE FROM subtask_history WHERE subtask_id = ?", (subtask_id,))

    def deliver_subtask(self, subtask_id: str, result_name: str, sha256: str, usage: dict[str, int]) -> None:
        self._transition(
            subtask_id,
            SubtaskState.DELIVERED,
            result_name=result_name,
            result_sha256=sha256,
            wall_ms=usage["wall_ms"],
            cpu_ns=usage["cpu_ns"],
            fuel=usage["fuel"],
        )

    def renew_leases(self, provider_id: str, subtask_ids: list[str], deadline_ms: int) -> list[str]:
        """Extend the leases the provider holds; return the ids among `subtask_ids` it no longer holds.

        A `delivered` subtask is still held: its result is being verified, the provider awaits the verdict.
        """
        held = []
        for subtask_id in subtask_ids:
            cursor = self._db.execute(
                "UPDATE subtasks SET deadline_ms = ?"
                " WHERE subtask_id = ? AND provider_id = ? AND state IN (?, ?)",
                (deadline_ms, subtask_id, provider_id, SubtaskState.ASSIGNED, SubtaskState.DELIVERED),
            )
            if cursor.rowcount:
                held.append(subtask_id)
                self._subtasks.amend(subtask_id, deadline_ms=deadline_ms)
        return [subtask_id for subtask_id in subtask_ids if subtask_id not in held]

    def computing(self, provider_id: str) -> int:
        """How many subtasks the provider holds to compute: being requested for it or assigned to it
        (a delivered result is no longer computed, so it takes none of its capacity)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM subtasks WHERE provider_id = ? AND state IN (?, ?)",
            (provider_id, SubtaskState.REQUESTED, SubtaskState.ASSIGNED),
        ).fetchone()
        return int(row[0])

    def subtask(self, subtask_id: str) -> SubtaskRow | None:
        kept = self._subtasks.get(subtask_id)
        if kept is not None:
            return kept
        row = self._db.execute("SELECT * FROM subtasks WHERE subtask_id = ?", (subtask_id,)).fetchone()
        if row is None:
            return None
        subtask = _subtask_row(row)
        self._subtasks.keep(subtask_id, subtask)
        return subtask

    def subtasks(self, *, task_id: str | None = None, states: tuple[str, ...] = ()) -> list[SubtaskRow]:
        query, args = "SELECT * FROM subtasks WHERE 1=1", []
        if task_id is not None:
            query, args = query + " AND task_id = ?", [task_id]
        if states:
            query += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        return [_subtask_row(row) for row in self._db.execute(query + " ORDER BY rowid", args).fetchall()]

    def expired(self, at_ms: int) -> list[SubtaskRow]:
        rows = self._db.execute(
            "SELECT * FROM subtasks WHERE state = ? AND deadline_ms < ?", (SubtaskState.ASSIGNED, at_ms)
        ).fetchall()
        return [_subtask_row(row) for row in rows]

    def count_by_state(self, task_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT state, COUNT(*) AS n FROM subtasks WHERE task_id = ? GROUP BY state", (task_id,)
        ).fetchall()
        return {row["state"]: row["n"] for row in rows}

    def counted_failures(self, task_id: str) -> int:
        """The task's failures that count against its budget (every failure state, less the forgiven)."""
        marks = ",".join("?" * len(FAILURE_STATES))
        row = self._db.execute(
            f"SELECT COUNT(*) FROM subtasks WHERE task_id = ? AND state IN ({marks}) AND NOT forgiven",
            (task_id, *FAILURE_STATES),
        ).fetchone()
        return int(row[0])

    def set_app_verdict(self, subtask_id: str, verdict: str, reason: str, info: dict[str, str]) -> None:
        """Keep the app's verdict on the subtask's result, and what it reported about the result."""
        self._db.execute(
            "UPDATE subtasks SET app_verdict = ?, app_reason = ?, result_info_json = ? WHERE subtask_id = ?",
            (verdict, reason, json.dumps(info), subtask_id),
        )

    def app_verdict(self, subtask_id: str) -> tuple[str, str] | None:
        """The app's verdict on the subtask's result and its reason, if it gave one (set_app_verdict)."""
        row = self._db.execute(
            "SELECT app_verdict, app_reason FROM subtasks WHERE subtask_id = ?", (subtask_id,)
        ).fetchone()
        if row is None or row["app_verdict"] is None:
            return None
        return row["app_verdict"], row["app_reason"]

    def result_info(self, task_id: str) -> dict[str, str]:
        """What the app reported about the task's accepted results: each key's distinct values, sorted,
        joined by ", " (`{"device": "CPU"}`, `{"device": "CPU, OPTIX (NVIDIA H100)"}`)."""
        rows = self._db.execute(
            "SELECT DISTINCT result_info_json FROM subtasks WHERE task_id = ? AND state = ?",
            (task_id, SubtaskState.ACCEPTED),
        ).fetchall()
        values: dict[str, set[str]] = {}
        for row in rows:
            for key, value in json.loads(row["result_info_json"]).items():
                values.setdefault(key, set()).add(value)
        return {key: ", ".join(sorted(found)) for key, found in sorted(values.items())}

    def bills(self, task_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT provider_id, COUNT(*) AS n, SUM(fuel) AS fuel, SUM(cpu_ns) AS cpu_ns FROM subtasks"
            " WHERE task_id = ? AND state = ? GROUP BY provider_id ORDER BY provider_id",
            (task_id, SubtaskState.ACCEPTED),
        ).fetchall()
        return [dict(row) for row in rows]

    def states_by_provider(self) -> dict[str, dict[str, int]]:
        """Every provider's subtasks counted by state, over all tasks."""
        rows = self._db.execute(
            "SELECT provider_id, state, COUNT(*) AS n FROM subtasks WHERE provider_id != ''"
            " GROUP BY provider_id, state"
        ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["provider_id"], {})[row["state"]] = row["n"]
        return counts

    def accepted_per_second(self, since_ms: int) -> list[tuple[int, int]]:
        """(epoch second, subtasks accepted in it) since `since_ms`, oldest first; quiet seconds absent."""
        rows = self._db.execute(
            "SELECT updated_ms / 1000 AS second, COUNT(*) AS n FROM subtasks"
            " WHERE state = ? AND updated_ms >= ? GROUP BY second ORDER BY second",
            (SubtaskState.ACCEPTED, since_ms),
        ).fetchall()
        return [(row["second"], row["n"]) for row in rows]

    # providers

    def upsert_provider(self, provider_id: str, offer: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO providers (provider_id, offer_json, last_seen_ms) VALUES (?, ?, ?)"
            " ON CONFLICT(provider_id) DO UPDATE SET offer_json = excluded.offer_json,"
            " last_seen_ms = excluded.last_seen_ms",
            (provider_id, json.dumps(offer), now_ms()),
        )

    def provider_offer(self, provider_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT offer_json FROM providers WHERE provider_id = ?", (provider_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row["offer_json"]))

    def providers(self) -> list[ProviderRow]:
        """Every provider that ever joined, with its last offer."""
        rows = self._db.execute("SELECT * FROM providers ORDER BY provider_id").fetchall()
        return [ProviderRow(r["provider_id"], json.loads(r["offer_json"]), r["last_seen_ms"]) for r in rows]


def _task_row(row: sqlite3.Row) -> TaskRow:
    return TaskRow(
        row["task_id"],
        row["app"],
        row["app_id"],
        row["env_id"],
        json.loads(row["params_json"]),
        row["max_subtasks"],
        TaskState(row["state"]),
        row["reason"],
        json.loads(row["prerequisites_json"]),
        row["created_ms"],
        row["finished_ms"],
        row["min_memory_mib"],
    )


def _column(field: str, value: Any) -> tuple[str, Any]:
    """A `SubtaskRow` field's value as the subtasks column that stores it."""
    return ("resources_json", json.dumps(value)) if field == "resources" else (field, value)


def _subtask_row(row: sqlite3.Row) -> SubtaskRow:
    return SubtaskRow(
        row["subtask_id"],
        row["task_id"],
        SubtaskState(row["state"]),
        row["provider_id"],
        row["params_json"],
        json.loads(row["resources_json"]),
        row["deadline_ms"],
        row["result_name"],
        row["fuel"],
        row["cpu_ns"],
        row["result_sha256"],
        row["wall_ms"],
        row["updated_ms"],
        row["replica_of"],
        row["reason"],
        bool(row["forgiven"]),
    )
