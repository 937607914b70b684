"""The ladder's parts on their own: the re-execution schedule, trust records, the journal, byte comparison."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.node.journal import Entry, Input, Journal, connect
from runtime.node.reexecute import first_difference
from runtime.node.trust import TrustPolicy, TrustRecord, TrustStore, is_inflated, sample_rate
from runtime.node.verification import differences

POLICY = TrustPolicy(probation=10, floor=0.05)


@pytest.mark.parametrize(
    ("clean", "rate"), [(0, 1.0), (9, 1.0), (10, 1.0), (20, 0.5), (100, 0.1), (200, 0.05), (10_000, 0.05)]
)
def test_the_rate_falls_from_everything_to_the_floor_as_the_clean_streak_grows(
    clean: int, rate: float
) -> None:
    assert sample_rate(TrustRecord("p", clean=clean), POLICY) == pytest.approx(rate)


def test_a_forger_is_always_re_executed_and_an_inflated_claim_keeps_the_rate_up() -> None:
    assert sample_rate(TrustRecord("p", clean=10_000, forged=1), POLICY) == 1.0
    assert (
        sample_rate(TrustRecord("p", clean=10_000, benchmark_inflated=True), POLICY) == POLICY.inflated_rate
    )


def test_no_probation_starts_at_the_floor_without_dividing_by_zero() -> None:
    assert sample_rate(TrustRecord("p"), TrustPolicy(probation=0, floor=0.05)) == 0.05


def test_a_benchmark_claim_is_judged_only_on_enough_evidence() -> None:
    assert not is_inflated(1000.0, 10.0, POLICY.speed_min_samples - 1, POLICY)
    assert is_inflated(1000.0, 10.0, POLICY.speed_min_samples, POLICY)
    assert not is_inflated(POLICY.speed_tolerance * 10.0, 10.0, 99, POLICY)


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "verification.sqlite")


def test_trust_moves_with_outcomes_and_a_forger_is_dropped(db: sqlite3.Connection) -> None:
    trust = TrustStore(db, TrustPolicy(failure_divisor=4))
    for _ in range(40):
        trust.accepted("p", reexecuted=False)
    trust.rejected("p")
    assert trust.get("p").clean == 10 and trust.get("p").share == pytest.approx(40 / 41)
    assert not trust.excluded("p", "t1")
    trust.forged("p", "t1", "fuel differs", count=3, was_accepted=2)
    record = trust.get("p")
    assert (record.clean, record.accepted, record.forged, record.blacklisted) == (0, 38, 3, False)
    assert trust.excluded("p", "t1") and not trust.excluded("p", "t2")
    assert trust.dropped_from("t1") == {"p"}


def test_a_blacklisting_policy_excludes_a_forger_from_every_task(db: sqlite3.Connection) -> None:
    trust = TrustStore(db, TrustPolicy(blacklist=True))
    trust.forged("p", "t1", "output differs")
    assert trust.get("p").blacklisted and trust.excluded("p", "t2")


def test_trust_survives_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "verification.sqlite"
    first = connect(path)
    TrustStore(first, POLICY).accepted("p", reexecuted=True)
    first.close()
    again = TrustStore(connect(path), POLICY).get("p")
    assert (again.accepted, again.reexecuted, again.clean) == (1, 1, 1)


def _entry(**overrides: object) -> Entry:
    fields: dict[str, object] = {
        "subtask_id": "s1",
        "task_id": "t1",
        "provider_id": "p",
        "app_id": "app-id",
        "app_name": "app",
        "env_id": "wasm",
        "module_sha256": "ab" * 32,
        "module_path": "/m.wasm",
        "inputs": (Input("in.bin", "cd" * 32),),
        "inputs_dir": "/inputs",
        "params_json": '{"x": 1}',
        "seed": "t1/s1",
        "assigned_ms": 1,
    }
    fields.update(overrides)
    return Entry(**fields)  # type: ignore[arg-type]


def test_the_journal_keeps_what_a_replay_needs(db: sqlite3.Connection, tmp_path: Path) -> None:
    journal = Journal(db)
    journal.assigned(_entry())
    journal.delivered("s1", tmp_path / "out.bin", "ef" * 32, 1234, 7)
    journal.reexecuted("s1", "ef" * 32, 1234, "reexecuted")
    journal.judged("s1", "accepted")
    entry = journal.get("s1")
    assert entry is not None
    assert entry.inputs == (Input("in.bin", "cd" * 32),) and entry.seed == "t1/s1"
    assert (entry.output_sha256, entry.fuel, entry.reexec_fuel, entry.checked, entry.verdict) == (
        "ef" * 32,
        1234,
        1234,
        "reexecuted",
        "accepted",
    )
    assert journal.unchecked_accepted("p") == []


def test_first_difference_finds_the_offset_across_chunks(tmp_path: Path) -> None:
    base = bytes(range(256)) * 4096  # 1 MiB: several read chunks
    left, right = tmp_path / "a", tmp_path / "b"
    left.write_bytes(base)
    right.write_bytes(base)
    assert first_difference(left, right) is None
    changed = bytearray(base)
    changed[700_001] ^= 1
    right.write_bytes(bytes(changed))
    assert first_difference(left, right) == 700_001
    right.write_bytes(base[:5000])
    assert first_difference(left, right) == 5000


def test_differences_name_output_and_fuel(tmp_path: Path) -> None:
    claimed, rerun = tmp_path / "claimed" / "tile.ppm", tmp_path / "rerun" / "tile.ppm"
    claimed.parent.mkdir()
    rerun.parent.mkdir()
    claimed.write_bytes(b"P6 abc")
    rerun.write_bytes(b"P6 abd")
    entry = _entry(output_path=str(claimed), output_sha256="x", fuel=10)
    assert differences(_entry(output_path=str(claimed), output_sha256="y", fuel=10), rerun, "y", 10) is None
    problem = differences(entry, rerun, "y", 12)
    assert problem is not None
    assert "first difference at byte 5" in problem and "claimed fuel 10, the re-execution used 12" in problem
