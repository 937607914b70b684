"""The verification journal: for every subtask, what is needed to re-run it and what its checks found.

A row is written when a subtask is assigned (app, environment, module digest and path, inputs by name
and digest, parameters, seed) and completed when its result is judged (claimed output digest and fuel,
the re-execution's output digest and fuel if there was one, the verdict). `taskapi replay` reads it.

Verdicts: `assigned` (no verdict yet, or no result ever came), `accepted`, `rejected` (the app's Verify),
`forged` (a re-execution differed, at delivery or in an audit), `inconclusive`.
Checks: `none` (accepted on the app's Verify alone), `reexecuted`, `audit` (re-executed after the provider
was caught), `error` (the re-execution itself failed; the app's verdict stood).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.node.row_cache import RowCache
from runtime.node.schema import use_wal
from runtime.node.store import now_ms

DB_NAME = "verification.sqlite"
"""The verification database in a requestor's data dir: this journal and the trust tables."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    subtask_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    app_name TEXT NOT NULL,
    env_id TEXT NOT NULL,
    module_sha256 TEXT NOT NULL DEFAULT '',
    module_path TEXT NOT NULL DEFAULT '',
    inputs_json TEXT NOT NULL DEFAULT '[]',
    inputs_dir TEXT NOT NULL DEFAULT '',
    params_json TEXT NOT NULL DEFAULT '{}',
    seed TEXT NOT NULL,
    assigned_ms INTEGER NOT NULL,
    judged_ms INTEGER,
    output_path TEXT,
    output_sha256 TEXT,
    fuel INTEGER,
    wall_ms INTEGER,
    reexec_sha256 TEXT,
    reexec_fuel INTEGER,
    checked TEXT NOT NULL DEFAULT 'none',
    verdict TEXT NOT NULL DEFAULT 'assigned',
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS journal_by_provider ON journal(provider_id, verdict, checked);
CREATE INDEX IF NOT EXISTS journal_by_task ON journal(task_id, verdict);
"""


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the verification database (WAL), creating it unless `read_only`."""
    if read_only:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        use_wal(db)
    db.row_factory = sqlite3.Row
    return db


@dataclass(frozen=True)
class Input:
    """One resource a subtask was given: its name and sha256 (the file is in the entry's inputs_dir)."""

    name: str
    sha256: str


@dataclass(frozen=True)
class Entry:
    """One journal row."""

    subtask_id: str
    task_id: str
    provider_id: str
    app_id: str
    app_name: str
    env_id: str
    module_sha256: str
    module_path: str
    inputs: tuple[Input, ...]
    inputs_dir: str
    params_json: str
    seed: str
    assigned_ms: int
    output_path: str | None = None
    output_sha256: str | None = None
    fuel: int | None = None
    wall_ms: int | None = None
    reexec_sha256: str | None = None
    reexec_fuel: int | None = None
    checked: str = "none"
    verdict: str = "assigned"
    reason: str = ""


class Journal:
    """The `journal` table; every write commits before it returns.

    A writing journal (`create`) is its table's only writer: it keeps the entries it read, amended by its
    own writes (`RowCache`), so reading an entry again costs no statement. A reading one keeps none (the
    writer is elsewhere).
    """

    def __init__(self, db: sqlite3.Connection, create: bool = True) -> None:
        self._db = db
        self._entries: RowCache[Entry] = RowCache(size=4096 if create else 0)
        if create:
            db.executescript(SCHEMA)

    def assigned(self, entry: Entry) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO journal (subtask_id, task_id, provider_id, app_id, app_name, env_id,"
            " module_sha256, module_path, inputs_json, inputs_dir, params_json, seed, assigned_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.subtask_id,
                entry.task_id,
                entry.provider_id,
                entry.app_id,
                entry.app_name,
                entry.env_id,
                entry.module_sha256,
                entry.module_path,
                json.dumps([{"name": i.name, "sha256": i.sha256} for i in entry.inputs]),
                entry.inputs_dir,
                entry.params_json,
                entry.seed,
                entry.assigned_ms,
            ),
        )
        self._entries.forget(entry.subtask_id)  # replaced whole: read again when asked for

    def delivered(self, subtask_id: str, output_path: Path, sha256: str, fuel: int, wall_ms: int) -> None:
        """What the provider claimed: its output file, the file's digest, the fuel and wall time."""
        self._db.execute(
            "UPDATE journal SET output_path = ?, output_sha256 = ?, fuel = ?, wall_ms = ?"
            " WHERE subtask_id = ?",
            (str(output_path), sha256, fuel, wall_ms, subtask_id),
        )
        self._entries.amend(
            subtask_id, output_path=str(output_path), output_sha256=sha256, fuel=fuel, wall_ms=wall_ms
        )

    def reexecuted(self, subtask_id: str, sha256: str | None, fuel: int | None, checked: str) -> None:
        self._db.execute(
            "UPDATE journal SET reexec_sha256 = ?, reexec_fuel = ?, checked = ? WHERE subtask_id = ?",
            (sha256, fuel, checked, subtask_id),
        )
        self._entries.amend(subtask_id, reexec_sha256=sha256, reexec_fuel=fuel, checked=checked)

    def judged(self, subtask_id: str, verdict: str, reason: str = "") -> None:
        self._db.execute(
            "UPDATE journal SET verdict = ?, reason = ?, judged_ms = ? WHERE subtask_id = ?",
            (verdict, reason, now_ms(), subtask_id),
        )
        self._entries.amend(subtask_id, verdict=verdict, reason=reason)

    def get(self, subtask_id: str) -> Entry | None:
        kept = self._entries.get(subtask_id)
        if kept is not None:
            return kept
        row = self._db.execute("SELECT * FROM journal WHERE subtask_id = ?", (subtask_id,)).fetchone()
        if row is None:
            return None
        entry = _entry(row)
        self._entries.keep(subtask_id, entry)
        return entry

    def unchecked_accepted(self, provider_id: str) -> list[Entry]:
        """The provider's accepted results that no re-execution has confirmed (audit candidates)."""
        rows = self._db.execute(
            "SELECT * FROM journal WHERE provider_id = ? AND verdict = 'accepted' AND checked = 'none'"
            " ORDER BY assigned_ms",
            (provider_id,),
        ).fetchall()
        return [_entry(row) for row in rows]

    def providers(self, task_id: str) -> list[str]:
        """The providers that delivered a judged result for the task."""
        rows = self._db.execute(
            "SELECT DISTINCT provider_id FROM journal WHERE task_id = ? AND verdict != 'assigned'"
            " ORDER BY provider_id",
            (task_id,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def entries(self, task_id: str | None = None) -> list[Entry]:
        if task_id is None:
            rows = self._db.execute("SELECT * FROM journal ORDER BY assigned_ms").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM journal WHERE task_id = ? ORDER BY assigned_ms", (task_id,)
            ).fetchall()
        return [_entry(row) for row in rows]


def _entry(row: sqlite3.Row) -> Entry:
    inputs: list[dict[str, Any]] = json.loads(row["inputs_json"])
    return Entry(
        subtask_id=row["subtask_id"],
        task_id=row["task_id"],
        provider_id=row["provider_id"],
        app_id=row["app_id"],
        app_name=row["app_name"],
        env_id=row["env_id"],
        module_sha256=row["module_sha256"],
        module_path=row["module_path"],
        inputs=tuple(Input(str(i["name"]), str(i["sha256"])) for i in inputs),
        inputs_dir=row["inputs_dir"],
        params_json=row["params_json"],
        seed=row["seed"],
        assigned_ms=row["assigned_ms"],
        output_path=row["output_path"],
        output_sha256=row["output_sha256"],
        fuel=row["fuel"],
        wall_ms=row["wall_ms"],
        reexec_sha256=row["reexec_sha256"],
        reexec_fuel=row["reexec_fuel"],
        checked=row["checked"],
        verdict=row["verdict"],
        reason=row["reason"],
    )
