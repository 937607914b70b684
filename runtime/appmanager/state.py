"""Which apps are enabled: one small SQLite table in the data dir, keyed by app id.

Only explicit choices are stored; an app without a row has its default (shipped apps enabled, added ones
disabled). Reading never creates the file, so looking at apps leaves no trace in the data dir.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS app_state (
    app_id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class EnabledState:
    """The enable/disable choices stored at `path` (an SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def choices(self) -> dict[str, bool]:
        """Every stored choice: app id -> enabled."""
        if not self.path.exists():
            return {}
        with self._connect() as db:
            rows = db.execute("SELECT app_id, enabled FROM app_state")
            return {app_id: bool(enabled) for app_id, enabled in rows}

    def set(self, app_id: str, enabled: bool, *, name: str, environment: str) -> None:
        """Record a choice (name and environment are kept for people reading the table)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "INSERT INTO app_state (app_id, enabled, name, environment) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (app_id) DO UPDATE SET enabled = excluded.enabled, "
                "changed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (app_id, int(enabled), name, environment),
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                db.execute(_SCHEMA)
                yield db
        finally:
            db.close()
