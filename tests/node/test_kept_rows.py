"""The rows the requestor's stores keep in memory (runtime/node/row_cache.py) answer as the database does:
after a rollback, after a restart, and to a reader in another connection; and the history of a subtask's
states, written by a trigger in the statement that writes each state, keeps every state and its reason."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.node.journal import Entry, Journal, connect
from runtime.node.states import IllegalTransition, SubtaskState, TaskState
from runtime.node.store import Store, TaskRow
from runtime.node.trust import TrustPolicy, TrustStore


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "requestor.sqlite")
    store.add_task(TaskRow("t1", "tutorialapp", "id", "wasm", {}, 4, TaskState.ACTIVE, "", {}))
    store.add_subtask("s1", "t1", "p1")
    return store


def entry(subtask_id: str) -> Entry:
    return Entry(subtask_id, "t1", "p1", "id", "tutorialapp", "wasm", "", "", (), "", "{}", "seed", 1)


def test_a_rolled_back_transition_is_not_read_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.assign_subtask("s1", "{}", [], 10)
        assert store.subtask("s1").state is SubtaskState.ASSIGNED  # type: ignore[union-attr]
        raise RuntimeError("the app call failed")
    row = store.subtask("s1")
    assert row is not None and row.state is SubtaskState.REQUESTED and row.deadline_ms == 0
    assert store.history("s1") == ["requested"]
    store.close()


def test_a_kept_row_is_amended_as_the_stored_one_is_written(store: Store, tmp_path: Path) -> None:
    assert store.subtask("s1") is not None  # kept from here on
    store.assign_subtask("s1", '{"start": 0}', [{"name": "in", "sha256": "ab"}], 10)
    assert store.renew_leases("p1", ["s1"], 20) == []
    store.deliver_subtask("s1", "result.json", "cd", {"wall_ms": 3, "cpu_ns": 4, "fuel": 5})
    kept = store.subtask("s1")
    store.close()
    reopened = Store(tmp_path / "requestor.sqlite")
    assert kept == reopened.subtask("s1")
    assert kept is not None and kept.deadline_ms == 20 and kept.resources == [{"name": "in", "sha256": "ab"}]
    assert kept is not None and (kept.state, kept.result_name, kept.fuel) == (
        SubtaskState.DELIVERED,
        "result.json",
        5,
    )
    reopened.close()


def test_a_refused_transition_reports_the_stored_state(store: Store) -> None:
    store.set_subtask_state("s1", SubtaskState.ABANDONED, "no work")
    with pytest.raises(IllegalTransition, match="abandoned"):
        store.assign_subtask("s1", "{}", [], 10)
    assert store.subtask("s1").state is SubtaskState.ABANDONED  # type: ignore[union-attr]
    store.close()


def test_each_state_is_recorded_with_its_reason_in_the_statement_that_writes_it(store: Store) -> None:
    store.assign_subtask("s1", "{}", [], 10)
    store.deliver_subtask("s1", "result.json", "cd", {"wall_ms": 1, "cpu_ns": 1, "fuel": 1})
    store.set_subtask_state("s1", SubtaskState.REJECTED, "Verify: wrong nonce")
    rows = store._db.execute(
        "SELECT state, reason FROM subtask_history WHERE subtask_id = 's1' ORDER BY rowid"
    ).fetchall()
    assert [tuple(row) for row in rows] == [
        ("requested", ""),
        ("assigned", ""),
        ("delivered", ""),
        ("rejected", "Verify: wrong nonce"),
    ]
    store.forget_subtask("s1")  # not requested any more: nothing is forgotten
    assert store.history("s1") == ["requested", "assigned", "delivered", "rejected"]
    store.close()


def test_a_reading_journal_sees_what_the_writer_wrote_after_its_first_read(tmp_path: Path) -> None:
    path = tmp_path / "verification.sqlite"
    writer = Journal(connect(path))
    writer.assigned(entry("s1"))
    reader = Journal(connect(path, read_only=True), create=False)
    assert reader.get("s1").verdict == "assigned"  # type: ignore[union-attr]
    assert writer.get("s1") is not None  # kept by the writer from here on
    writer.delivered("s1", tmp_path / "result.json", "cd", 5, 3)
    writer.judged("s1", "accepted")
    seen = reader.get("s1")
    assert seen is not None and (seen.verdict, seen.output_sha256, seen.fuel) == ("accepted", "cd", 5)
    assert writer.get("s1") == seen


def test_drops_and_records_are_read_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "verification.sqlite"
    first = TrustStore(connect(path), TrustPolicy())
    first.drop("p1", "t1", "Verify failed")
    first.forged("p2", "t2", "output differs")
    first.accepted("p3", reexecuted=True)
    again = TrustStore(connect(path), TrustPolicy())
    assert again.excluded("p1", "t1") and not again.excluded("p1", "t2")
    assert again.dropped_from("t2") == {"p2"}
    assert again.get("p3") == first.get("p3") and again.get("p3").accepted == 1
    assert again.get("p2").forged == 1 and not again.get("p2").blacklisted


def test_a_blacklisting_is_answered_from_the_row_the_write_returned(tmp_path: Path) -> None:
    trust = TrustStore(connect(tmp_path / "verification.sqlite"), TrustPolicy(blacklist=True))
    assert not trust.excluded("p1", "t9")
    trust.forged("p1", "t1", "output differs")
    assert trust.excluded("p1", "t9")
    with sqlite3.connect(tmp_path / "verification.sqlite") as db:
        assert db.execute("SELECT blacklisted FROM trust WHERE provider_id = 'p1'").fetchone() == (1,)
