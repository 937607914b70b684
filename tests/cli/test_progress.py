"""The progress of `taskapi run` counts every subtask in one column, names copies and failures, and has
modes for scripts (`--json`, `--quiet`)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from runtime.cli import main
from runtime.cli_progress import COLUMNS, Tally
from runtime.node.states import SubtaskState
from runtime.node.store import SubtaskRow


def row(subtask_id: str, state: str, *, copy_of: str | None = None, reason: str = "") -> SubtaskRow:
    return SubtaskRow(
        subtask_id,
        "t",
        SubtaskState(state),
        "prov-1",
        "{}",
        [],
        0,
        None,
        0,
        0,
        replica_of=copy_of,
        reason=reason,
    )


def test_each_state_lands_in_exactly_one_column() -> None:
    states = [state for column in COLUMNS.values() for state in column]
    tally = Tally.of([row(f"s{i}", state) for i, state in enumerate(states)])
    assert tally.total == len(states)
    assert tally.counts == {column: len(members) for column, members in COLUMNS.items()}


def test_an_empty_task_says_so() -> None:
    assert Tally.of([]).text() == "no subtask handed out yet"


def test_waiting_is_not_failed_and_copies_and_failures_are_named() -> None:
    tally = Tally.of(
        [
            row("a", "accepted"),
            row("a2", "wanted", copy_of="a"),
            row("b", "assigned"),
            row("c", "rejected", reason="Verify: nonce does not meet the difficulty"),
            row("c2", "expired", copy_of="c", reason="lease ran out"),
        ]
    )
    assert tally.counts == {"waiting": 1, "running": 1, "verifying": 0, "accepted": 1, "failed": 2}
    assert tally.text() == (
        "1/5 accepted, 1 running, 1 waiting, 2 failed (re-run), 2 of them redundancy copies"
    )
    assert [failure.text() for failure in tally.failures] == [
        "subtask c rejected on provider prov-1: Verify: nonce does not meet the difficulty",
        "subtask c2 (redundancy copy of c) expired on provider prov-1: lease ran out",
    ]


RUN = [
    "run",
    "tutorialapp",
    "--env",
    "local",
    "--set",
    "input=q",
    "--set",
    "difficulty=6",
    "--set",
    "subtasks=3",
]


def test_json_summary_counts_what_ran(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [*RUN, "--output", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    progress = summary["progress"]
    assert progress["accepted"] == progress["total"] == sum(summary["subtasks"].values()) >= 3
    assert summary["failures"] == [] and progress["failed"] == 0


def test_quiet_prints_nothing_on_success(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [*RUN, "--output", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert (tmp_path / "result.json").is_file()
