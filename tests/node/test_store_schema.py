"""The requestor store's schema versions (`PRAGMA user_version`, runtime/node/schema.py): a store of every
earlier shape opens as the newest, with its rows intact.

Stores written before schema versions existed are built here from their own DDL, as the commits that
wrote them had it (all at user_version 0, whatever their shape); versioned stores are built by applying
the first migrations only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.node.schema import PAGE_BYTES, SchemaTooNew, migrate, version
from runtime.node.states import IllegalTransition, SubtaskState, TaskState
from runtime.node.store import MIGRATIONS, Store

# The store's DDL as first committed (8004587).
UNVERSIONED_FIRST = """
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
# With replicas (855492c).
UNVERSIONED_REPLICAS = UNVERSIONED_FIRST.replace(
    "    updated_ms INTEGER NOT NULL\n);", "    updated_ms INTEGER NOT NULL,\n    replica_of TEXT\n);"
)
# With memory needs and the provider index (70b5b02), the last shape before versions.
UNVERSIONED_MEMORY = (
    UNVERSIONED_REPLICAS.replace(
        "    prerequisites_json TEXT NOT NULL DEFAULT '{}',\n",
        "    prerequisites_json TEXT NOT NULL DEFAULT '{}',\n"
        "    min_memory_mib INTEGER NOT NULL DEFAULT 0,\n",
    )
    + "CREATE INDEX IF NOT EXISTS subtasks_by_provider ON subtasks(provider_id, state);\n"
)

UNVERSIONED = {"first": UNVERSIONED_FIRST, "replicas": UNVERSIONED_REPLICAS, "memory": UNVERSIONED_MEMORY}


def add_rows(db: sqlite3.Connection) -> None:
    """One active task with one delivered subtask, in columns every shape has (and its history, in a
    shape that keeps one)."""
    db.execute(
        "INSERT INTO tasks (task_id, app, app_id, env_id, params_json, max_subtasks, state, created_ms)"
        " VALUES ('t1', 'tutorialapp', 'id', 'wasm', '{\"difficulty\": 3}', 4, 'active', 1)"
    )
    db.execute(
        "INSERT INTO subtasks (subtask_id, task_id, state, provider_id, result_name, fuel, reason,"
        " updated_ms) VALUES ('s1', 't1', 'delivered', 'p1', 'result.json', 77, '', 2)"
    )
    has_history = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'subtask_history'").fetchone()
    kept_by_trigger = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'trigger'").fetchone()
    if has_history and not kept_by_trigger:
        db.execute("INSERT INTO subtask_history (subtask_id, state, at_ms) VALUES ('s1', 'delivered', 2)")


def assert_newest_with_rows_intact(path: Path) -> None:
    store = Store(path)
    try:
        assert version(store._db) == len(MIGRATIONS)
        task = store.task("t1")
        assert task is not None
        assert (task.state, task.params, task.min_memory_mib) == (TaskState.ACTIVE, {"difficulty": 3}, 0)
        subtask = store.subtask("s1")
        assert subtask is not None
        assert (subtask.state, subtask.fuel, subtask.replica_of) == (SubtaskState.DELIVERED, 77, None)
        assert store.history("s1") == ["delivered"]
        with pytest.raises(IllegalTransition, match=r"history: delivered\)"):
            store.set_subtask_state("s1", SubtaskState.EXPIRED)
        store.set_subtask_state("s1", SubtaskState.ACCEPTED)
        assert store.history("s1") == ["delivered", "accepted"]
        assert store.result_info("t1") == {}  # an earlier store's results reported nothing
        store.set_app_verdict("s1", "SUCCESS", "ok", {"device": "CPU"})
        assert store.result_info("t1") == {"device": "CPU"}
        store.add_subtask("s2", "t1", "p1")  # the newest columns and tables take writes
        store.set_task_min_memory("t1", 512)
    finally:
        store.close()


@pytest.mark.parametrize("ddl", UNVERSIONED.values(), ids=list(UNVERSIONED))
def test_a_store_from_before_schema_versions_opens_as_the_newest(tmp_path: Path, ddl: str) -> None:
    path = tmp_path / "requestor.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(ddl)
        add_rows(db)
    assert_newest_with_rows_intact(path)


@pytest.mark.parametrize("had", range(1, len(MIGRATIONS)), ids=lambda n: f"version {n}")
def test_a_store_of_every_earlier_version_opens_as_the_newest(tmp_path: Path, had: int) -> None:
    path = tmp_path / "requestor.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, path, MIGRATIONS[:had])
    assert version(db) == had
    add_rows(db)
    db.close()
    assert_newest_with_rows_intact(path)


def test_a_new_store_is_at_the_newest_version_and_reopens_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "requestor.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        schema = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    store = Store(path)
    assert version(store._db) == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_a_store_from_a_newer_taskapi_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "requestor.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaTooNew, match=f"schema version {len(MIGRATIONS) + 1}; this taskapi knows up to"):
        Store(path)
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master")] == ["future"]


def test_result_info_gathers_each_keys_values_over_the_accepted_results_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    try:
        add_rows(store._db)
        reported = {"s1": "OPTIX (NVIDIA H100)", "s2": "CPU", "s3": "CPU", "s4": "CUDA (rejected)"}
        for subtask_id, device in reported.items():
            if subtask_id != "s1":
                store.add_subtask(subtask_id, "t1", "p1")
            store.set_app_verdict(subtask_id, "SUCCESS", "ok", {"device": device})
        store._db.execute("UPDATE subtasks SET state = 'accepted' WHERE subtask_id IN ('s1', 's2', 's3')")
        store.set_app_verdict("s3", "SUCCESS", "ok", {"device": "CPU", "denoiser": "OIDN"})
        assert store.result_info("t1") == {"denoiser": "OIDN", "device": "CPU, OPTIX (NVIDIA H100)"}
    finally:
        store.close()


def test_a_new_store_has_small_pages_and_an_older_store_keeps_its_own(tmp_path: Path) -> None:
    new = Store(tmp_path / "new.sqlite")
    assert new._db.execute("PRAGMA page_size").fetchone()[0] == PAGE_BYTES
    new.close()
    path = tmp_path / "requestor.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA page_size = 4096")
        db.execute("PRAGMA journal_mode = WAL")
        migrate(db, path, MIGRATIONS[:-2])  # before the history trigger: add_rows writes its own
        add_rows(db)
    assert_newest_with_rows_intact(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
