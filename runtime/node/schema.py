"""Versioned SQLite schemas: `PRAGMA user_version` is the number of migrations a database has had.

A database's migrations are a list; opening it applies those it has not had yet, each in its own
transaction together with the new version number, so a crash mid-way leaves a database at a version it
really has. A database written by a newer taskapi (a version past the list) is refused, not guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

Migration = Callable[[sqlite3.Connection], None]


class SchemaTooNew(Exception):
    """A database at a schema version this taskapi does not know."""


PAGE_BYTES = 1024
"""The page size of a database the node creates. Every commit writes each page it changed to the WAL
whole, and a subtask's writes change a few rows of 0.2-0.5 KiB each, in several tables and indexes:
1 KiB pages make a commit about 20% cheaper in CPU than SQLite's default 4 KiB (docs/node.md). A
database created with other pages keeps them."""


def use_wal(db: sqlite3.Connection) -> None:
    """Set up a connection that writes: WAL with `synchronous=NORMAL` (a commit survives a killed process;
    the last ones may be lost with the machine), and 1 KiB pages if the database is new."""
    db.execute(f"PRAGMA page_size={PAGE_BYTES}")  # no effect on a database that has pages already
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")


def execute_ddl(db: sqlite3.Connection, ddl: str) -> None:
    """Run `;`-separated DDL statements one by one (`executescript` would commit the open transaction)."""
    for statement in ddl.split(";"):
        if statement.strip():
            db.execute(statement)


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    """Bring the database at `path` (open as `db`, autocommit) to version `len(migrations)`."""
    while True:
        db.execute("BEGIN IMMEDIATE")  # another process may be migrating it: read the version inside
        try:
            current = version(db)
            if current > len(migrations):
                known = len(migrations)
                raise SchemaTooNew(f"{path} is at schema version {current}; this taskapi knows up to {known}")
            if current == len(migrations):
                db.execute("COMMIT")
                return
            migrations[current](db)
            db.execute(f"PRAGMA user_version = {current + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
