"""tutorialapp's plan on disk: a snapshot and a journal of range changes, read back the same, kept
current in memory, durable across a killed writer; its Verify is idempotent for a range already done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.sdk import RequestorTaskDir, VerifyResult
from apps.tutorialapp import plan as plan_module
from apps.tutorialapp import pow, requestor
from apps.tutorialapp.plan import (
    JOURNAL_FILE,
    PLAN_FILE,
    NonceRange,
    Plan,
    PlanCorrupt,
    RangeState,
    open_plan,
    plan_journal,
)

TEXT, DIFFICULTY = "bench-trivial-148", 12  # the first valid nonce, 4032, lies in the last of 64 ranges


def naive_answer(ranges: list[NonceRange]) -> int | None:
    """The answer as the plan's docs define it, by a plain scan."""
    for item in ranges:
        if item.state is not RangeState.DONE:
            return None
        if item.nonce is not None:
            return item.nonce
    return None


def naive_next_pending(ranges: list[NonceRange]) -> int | None:
    if naive_answer(ranges) is not None:
        return None
    hits = [i for i, r in enumerate(ranges) if r.state is RangeState.DONE and r.nonce is not None]
    below = min(hits, default=len(ranges))
    return next((i for i in range(below) if ranges[i].state is RangeState.PENDING), None)


operations = st.lists(
    st.tuples(
        st.sampled_from(["assign", "done", "release"]), st.integers(0, 11), st.none() | st.integers(0, 9)
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps=operations)
def test_the_indexed_queries_agree_with_a_plain_scan_and_the_files_replay_the_same(
    steps: list[tuple[str, int, int | None]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("plan")
    plan = Plan.new(TEXT, 8, 12)
    plan.save(root)
    position = plan_journal(root).read(repair=False)[3]
    assert position is not None
    for number, (operation, index, nonce) in enumerate(steps):
        item = plan.ranges[index]
        if operation == "assign" and item.state is RangeState.PENDING:
            plan.assign(index, f"sub-{number}")
        elif operation == "done" and item.state is RangeState.ASSIGNED:
            plan.complete(index, nonce)
        elif operation == "release" and item.subtask_id is not None:
            assert plan.release(item.subtask_id)
        assert plan.answer() == naive_answer(plan.ranges)
        assert plan.next_pending() == naive_next_pending(plan.ranges)
        for i, r in enumerate(plan.ranges):
            if r.subtask_id is not None:
                assert plan.index_of(r.subtask_id) == i
        if number % 7 == 0:
            plan.commit(root, position)
    plan.commit(root, position)
    assert Plan.load(root) == plan


def created_task(tmp_path: Path, subtasks: int) -> RequestorTaskDir:
    task_dir = RequestorTaskDir(tmp_path / "task")
    task_dir.prepare()
    requestor.create_task(task_dir, subtasks, {"input": TEXT, "difficulty": DIFFICULTY, "subtasks": subtasks})
    return task_dir


def deliver(
    task_dir: RequestorTaskDir, subtask_id: str, params: dict[str, object], nonce: int | None
) -> None:
    """An honest result of the subtask's range, except that `nonce` is claimed."""
    output = task_dir.subtask_outputs(subtask_id)
    output.mkdir(parents=True, exist_ok=True)
    digest = None if nonce is None else pow.digest(TEXT, nonce).hex()
    claim = {"start": params["start"], "end": params["end"], "nonce": nonce, "hash": digest}
    (output / requestor.RESULT_FILE).write_text(json.dumps(claim))


def honest_nonce(params: dict[str, object]) -> int | None:
    start, end = params["start"], params["end"]
    assert isinstance(start, int) and isinstance(end, int)
    return pow.search(TEXT, DIFFICULTY, start, min(end, 2**DIFFICULTY))


def test_a_call_appends_its_change_and_leaves_the_snapshot_alone(tmp_path: Path) -> None:
    task_dir = created_task(tmp_path, 64)
    snapshot = (task_dir.root / PLAN_FILE).stat()
    journal = (task_dir.root / JOURNAL_FILE).read_bytes()
    subtask = requestor.next_subtask(task_dir, "sub-0")
    assert subtask is not None
    assert requestor.has_pending_subtasks(task_dir)
    after = (task_dir.root / JOURNAL_FILE).read_bytes()
    assert after.startswith(journal)
    assert after[len(journal) :] == b'["assign",0,"sub-0"]\n'  # one line; the read-only call wrote nothing
    now = (task_dir.root / PLAN_FILE).stat()
    assert (now.st_ino, now.st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)


def test_a_task_runs_to_its_answer_and_the_files_say_so(tmp_path: Path) -> None:
    task_dir = created_task(tmp_path, 64)
    number = 0
    while (subtask := requestor.next_subtask(task_dir, f"sub-{number}")) is not None:
        deliver(task_dir, f"sub-{number}", subtask.params, honest_nonce(subtask.params))
        assert requestor.verify(task_dir, f"sub-{number}") == (VerifyResult.SUCCESS, "")
        number += 1
    assert number == 64 and not requestor.has_pending_subtasks(task_dir)
    assert Plan.load(task_dir.root).answer() == 4032
    assert json.loads((task_dir.task_outputs / requestor.RESULT_FILE).read_text())["nonce"] == 4032


def test_changes_made_by_another_process_are_seen_by_the_plan_held_in_memory(tmp_path: Path) -> None:
    """A warm component instance in another worker appends too: this one reads what it appended."""
    task_dir = created_task(tmp_path, 8)
    assert requestor.next_subtask(task_dir, "sub-0") is not None  # this process now holds the plan
    other, position = plan_module._read(task_dir.root, repair=False)  # another instance's copy
    assert position is not None
    other.assign(1, "sub-1")
    other.commit(task_dir.root, position)
    third = requestor.next_subtask(task_dir, "sub-2")
    assert third is not None and third.params["start"] == 2 * 512
    assert Plan.load(task_dir.root).index_of("sub-1") == 1


def test_an_unfinished_last_line_is_cut_off_and_the_plan_goes_on(tmp_path: Path) -> None:
    task_dir = created_task(tmp_path, 8)
    assert requestor.next_subtask(task_dir, "sub-0") is not None
    plan_module._open.clear()  # a fresh instance: a restarted app server
    with (task_dir.root / JOURNAL_FILE).open("ab") as journal:
        journal.write(b'["assign",1,"sub-')  # killed mid-append
    assert Plan.load(task_dir.root).index_of("sub-0") == 0  # a reader skips it and changes nothing
    assert (task_dir.root / JOURNAL_FILE).read_bytes().endswith(b'"sub-')
    nxt = requestor.next_subtask(task_dir, "sub-1b")
    assert nxt is not None and nxt.params["start"] == 512
    lines = (task_dir.root / JOURNAL_FILE).read_text().splitlines()
    assert lines[1:] == ['["assign",0,"sub-0"]', '["assign",1,"sub-1b"]']


def test_a_journal_of_an_older_snapshot_is_ignored(tmp_path: Path) -> None:
    """A save killed between its snapshot and its new journal: the snapshot already holds everything."""
    task_dir = created_task(tmp_path, 8)
    assert requestor.next_subtask(task_dir, "sub-0") is not None
    old_journal = (task_dir.root / JOURNAL_FILE).read_bytes()
    whole = Plan.load(task_dir.root)
    whole.release("sub-0")
    whole.save(task_dir.root)
    (task_dir.root / JOURNAL_FILE).write_bytes(old_journal)
    plan_module._open.clear()
    assert Plan.load(task_dir.root).index_of("sub-0") is None
    again = requestor.next_subtask(task_dir, "sub-new")
    assert again is not None and again.params["start"] == 0


def test_a_journal_line_that_is_no_change_is_refused_naming_the_file(tmp_path: Path) -> None:
    task_dir = created_task(tmp_path, 8)
    with (task_dir.root / JOURNAL_FILE).open("ab") as journal:
        journal.write(b'["assign",99,"sub-x"]\n')
    with pytest.raises(PlanCorrupt, match=f"{JOURNAL_FILE} holds a change this plan cannot apply"):
        Plan.load(task_dir.root)


def test_a_failed_call_commits_nothing_and_the_plan_is_read_again(tmp_path: Path) -> None:
    task_dir = created_task(tmp_path, 8)
    journal = (task_dir.root / JOURNAL_FILE).read_bytes()
    with pytest.raises(RuntimeError), open_plan(task_dir.root) as plan:
        plan.assign(0, "sub-lost")
        raise RuntimeError("the call failed")
    assert (task_dir.root / JOURNAL_FILE).read_bytes() == journal
    with open_plan(task_dir.root) as plan:
        assert plan.index_of("sub-lost") is None and plan.next_pending() == 0


def test_verify_of_a_range_already_verified_answers_success_again(tmp_path: Path) -> None:
    """The node's stop cancelled a Verify after the app had saved the range done; on resume it asks again."""
    task_dir = created_task(tmp_path, 64)
    subtask = requestor.next_subtask(task_dir, "sub-0")
    assert subtask is not None
    deliver(task_dir, "sub-0", subtask.params, honest_nonce(subtask.params))
    assert requestor.verify(task_dir, "sub-0") == (VerifyResult.SUCCESS, "")
    journal = (task_dir.root / JOURNAL_FILE).read_bytes()
    plan_module._open.clear()  # the resumed app server
    assert requestor.verify(task_dir, "sub-0") == (VerifyResult.SUCCESS, "")
    assert (task_dir.root / JOURNAL_FILE).read_bytes() == journal, "a repeated verdict changed the plan"


def test_verify_of_a_done_range_with_another_result_fails_and_keeps_the_range_done(tmp_path: Path) -> None:
    task_dir = created_task(tmp_path, 64)
    subtask = requestor.next_subtask(task_dir, "sub-0")
    assert subtask is not None
    deliver(task_dir, "sub-0", subtask.params, None)
    assert requestor.verify(task_dir, "sub-0") == (VerifyResult.SUCCESS, "")
    deliver(task_dir, "sub-0", subtask.params, 7)  # not a valid nonce
    verdict, reason = requestor.verify(task_dir, "sub-0")
    assert verdict is VerifyResult.FAILURE and "verified with another result" in reason
    assert Plan.load(task_dir.root).ranges[0].state is RangeState.DONE
