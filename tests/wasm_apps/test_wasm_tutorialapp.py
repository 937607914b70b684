"""tutorialapp.wasm against the Python tutorialapp: same plan, same result files, same verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.sdk.errors import InvalidArgument
from apps.tutorialapp import pow
from apps.tutorialapp.plan import JOURNAL_FILE, PLAN_FILE, Plan, RangeState
from apps.tutorialapp.requestor import DEFAULT_SUBTASKS, check_claim, parse_params
from environments.wasm import WasmConfig
from tests.wasm_apps.wasm_harness import JsonDict, WasmTask, compute
from wasm_apps import module_path
from wasm_apps.run import ModuleHost


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleHost]:
    config = WasmConfig(cache_dir=tmp_path_factory.mktemp("wasm-cache") / "cache", max_parallel=1)
    with ModuleHost(module_path("tutorialapp"), config) as host:
        yield host


@pytest.fixture
def task(host: ModuleHost, tmp_path: Path) -> WasmTask:
    return WasmTask(host, tmp_path)


def smallest_nonce(text: str, difficulty: int) -> int:
    """The smallest valid nonce, by the Python kernel."""
    start, step = 0, 2**difficulty
    while (nonce := pow.search(text, difficulty, start, start + step)) is None:
        start += step
    return nonce


def expected_result(text: str, difficulty: int) -> bytes:
    """task_outputs/result.json as the Python requestor writes it."""
    nonce = smallest_nonce(text, difficulty)
    return (json.dumps({"nonce": nonce, "hash": pow.digest(text, nonce).hex()}) + "\n").encode()


def empty_first_round_input(difficulty: int) -> str:
    """An input with no valid nonce in [0, 2**difficulty): only the open-ended last range finds one."""
    candidates: Iterator[str] = (f"rounds-{i}" for i in range(10_000))
    return next(t for t in candidates if pow.search(t, difficulty, 0, 2**difficulty) is None)


@pytest.mark.parametrize("max_subtasks", [100, 3])
def test_a_task_naming_no_subtasks_is_split_into_the_default_ranges_like_the_python_app(
    task: WasmTask, max_subtasks: int
) -> None:
    params = {"input": "hello", "difficulty": 8}
    assert "error" not in task.create(params, max_subtasks)
    plan = Plan.load(task.state_dir)
    assert plan == parse_params(params, max_subtasks)
    assert plan.subtasks == min(DEFAULT_SUBTASKS, max_subtasks)
    task.run_to_end()
    assert (task.task_dir / "task_outputs" / "result.json").read_bytes() == expected_result("hello", 8)


@pytest.mark.parametrize(
    ("text", "difficulty", "subtasks", "max_subtasks"),
    [
        ("hello", 8, 3, 100),
        ("golem", 10, 7, 4),
        ("", 0, 5, 100),
        ('ünïcødé ✓ 🚀 "quoted" \\ \n tab\t', 6, 1, 100),
        ("x" * 130, 12, 16, 100),
        ("split", 9, 10_000, 3),
    ],
)
def test_result_is_byte_identical_to_the_python_app(
    task: WasmTask, text: str, difficulty: int, subtasks: int, max_subtasks: int
) -> None:
    params = {"input": text, "difficulty": difficulty, "subtasks": subtasks}
    assert task.create(params, max_subtasks) == {"min_memory_mib": 64}  # descriptor.json says 64
    assert Plan.load(task.state_dir) == parse_params(params, max_subtasks)
    task.run_to_end()
    result = task.task_dir / "task_outputs" / "result.json"
    assert result.read_bytes() == expected_result(text, difficulty)
    assert Plan.load(task.state_dir).answer() == smallest_nonce(text, difficulty)


def test_no_valid_nonce_below_two_to_the_difficulty_still_takes_only_the_planned_subtasks(
    task: WasmTask,
) -> None:
    """The open-ended last range finds the nonce: the task never needs more than max_subtasks_count."""
    text = empty_first_round_input(6)
    task.create({"input": text, "difficulty": 6, "subtasks": 4}, 4)
    task.run_to_end()
    plan = Plan.load(task.state_dir)
    assert len(plan.ranges) == 4 and plan.answer() == smallest_nonce(text, 6) >= 2**6
    assert (task.task_dir / "task_outputs" / "result.json").read_bytes() == expected_result(text, 6)


def test_compute_writes_the_python_providers_result_file(task: WasmTask) -> None:
    params = {"input": "hello", "difficulty": 8, "start": 0, "end": 400}
    output = task.compute("sub-x", params)
    nonce = pow.search("hello", 8, 0, 400)
    assert nonce is not None
    python = {"start": 0, "end": 400, "nonce": nonce, "hash": pow.digest("hello", nonce).hex()}
    assert output.read_bytes() == json.dumps(python).encode()
    empty = task.compute("sub-y", {"input": "hello", "difficulty": 30, "start": 5, "end": 9})
    assert empty.read_bytes() == json.dumps({"start": 5, "end": 9, "nonce": None, "hash": None}).encode()


def test_the_same_compute_gives_the_same_bytes_and_fuel(host: ModuleHost, tmp_path: Path) -> None:
    params = {"input": "abc", "difficulty": 10, "start": 0, "end": 3000}
    runs = [compute(host, tmp_path / side / "t", "s", params) for side in ("a", "b")]
    assert runs[0][0].fuel == runs[1][0].fuel > 0
    outputs = [output for _, output in runs]
    assert outputs[0] is not None and outputs[1] is not None
    assert outputs[0].read_bytes() == outputs[1].read_bytes()


def two_nonce_input(difficulty: int) -> str:
    """An input whose range [0, 2**difficulty) holds two valid nonces, the first of them not 0."""
    for i in range(10_000):
        text = f"forge-{i}"
        valid = [n for n in range(2**difficulty) if pow.meets(text, n, difficulty)]
        if len(valid) >= 2 and valid[0] > 0:
            return text
    raise AssertionError("no such input")


def test_digests_match_hashlib_for_every_tail_length(host: ModuleHost, tmp_path: Path) -> None:
    """Difficulty 0 makes compute report sha256(text + str(start)): cover one- and two-block endings."""
    for length, start in [(n, 10 ** (n % 19)) for n in range(0, 131)] + [(3, -(2**63)), (4, 2**63 - 2)]:
        text = "é" * (length // 2) + "x" * (length % 2)
        params = {"input": text, "difficulty": 0, "start": start, "end": start + 1}
        result, output = compute(host, tmp_path / "t", "s", params)
        assert result.reply == {"output": "result.json"} and output is not None
        claim = json.loads(output.read_text())
        assert (claim["nonce"], claim["hash"]) == (start, pow.digest(text, start).hex()), (length, start)


@pytest.mark.parametrize(("start", "end"), [(-300, 300), (95, 1_100), (99_990, 100_500)])
def test_search_steps_digits_like_python(host: ModuleHost, tmp_path: Path, start: int, end: int) -> None:
    """Negative nonces and carries into a new digit find the same nonce as the Python kernel."""
    for difficulty in (4, 7, 30):
        params = {"input": "carry", "difficulty": difficulty, "start": start, "end": end}
        _, output = compute(host, tmp_path / "t", f"s-{difficulty}", params)
        assert output is not None
        claim = json.loads(output.read_text())
        assert claim["nonce"] == pow.search("carry", difficulty, start, end)


def forged_claims(text: str, difficulty: int, start: int, end: int) -> dict[str, str]:
    """result.json texts for range [start, end) that the Python verifier rejects, by what is wrong."""
    nonce = pow.search(text, difficulty, start, end)
    assert nonce is not None
    later = pow.search(text, difficulty, nonce + 1, end)
    assert later is not None
    weak = next(n for n in range(start, end) if not pow.meets(text, n, difficulty))

    def claim(n: int | None, **extra: object) -> str:
        digest = None if n is None else pow.digest(text, n).hex()
        return json.dumps({"start": start, "end": end, "nonce": n, "hash": digest, **extra})

    return {
        "other range": claim(nonce, start=start + 1),
        "nonce outside": claim(end + 3),
        "nonce not an int": claim(nonce, nonce=float(nonce)),
        "bool nonce": claim(nonce, nonce=True),
        "string nonce": claim(nonce, nonce=f"{nonce}'s"),
        "wrong hash": claim(nonce, hash="00" * 32),
        "hash with NUL": claim(nonce, hash=pow.digest(text, nonce).hex() + "\u0000"),
        "too weak": claim(weak),
        "missed nonce": claim(None),
        "not the smallest": claim(later),
        "not an object": "[1, 2]",
        "not json": "{nonce: 1",
        "empty": "",
    }


def python_verdict(plan: Plan, claim: str, subtask_id: str) -> str | None:
    """The Python requestor's reason for rejecting a result.json text (None: it passes)."""
    try:
        return check_claim(plan, 0, json.loads(claim), seed=subtask_id)
    except json.JSONDecodeError:
        return "unreadable result.json"


def test_forged_results_are_rejected_and_the_range_is_handed_out_again(task: WasmTask) -> None:
    difficulty = 5
    text = two_nonce_input(difficulty)
    task.create({"input": text, "difficulty": difficulty, "subtasks": 1})
    plan = Plan.load(task.state_dir)
    start, end = plan.bounds(0)  # 32 nonces: every one is spot-checked
    for what, claim in forged_claims(text, difficulty, start, end).items():
        subtask_id, subtask = task.next_subtask()
        assert subtask is not None and (subtask["params"]["start"], subtask["params"]["end"]) == (start, end)
        result = task.task_dir / "subtask_outputs" / subtask_id / "result.json"
        result.parent.mkdir(parents=True)
        result.write_text(claim)
        verdict = task.verify(subtask_id)
        python_reason = python_verdict(plan, claim, subtask_id)
        assert verdict["result"] == "FAILURE" and python_reason is not None, what
        if python_reason.startswith("unreadable"):
            assert verdict["reason"].startswith(python_reason), what
        elif python_reason.startswith("spot check"):  # the samples differ, the finding need not
            assert verdict["reason"].startswith("spot check found valid nonce"), what
        else:
            assert verdict["reason"] == python_reason, what
        assert Plan.load(task.state_dir).ranges[0].state is RangeState.PENDING, what
    assert not (task.task_dir / "task_outputs" / "result.json").exists()
    task.run_to_end()
    assert (task.task_dir / "task_outputs" / "result.json").read_bytes() == expected_result(text, difficulty)


def test_discard_of_the_answer_range_removes_the_result(task: WasmTask) -> None:
    task.create({"input": "hello", "difficulty": 8, "subtasks": 3})
    task.run_to_end()
    plan = Plan.load(task.state_dir)
    answer_range = next(r for r in plan.ranges if r.nonce is not None)
    assert answer_range.subtask_id is not None
    reply = task.call("discard_subtasks", subtask_ids=[answer_range.subtask_id, "unknown"])
    assert reply == {"discarded_subtask_ids": [answer_range.subtask_id]}
    assert not (task.task_dir / "task_outputs" / "result.json").exists()
    assert task.call("has_pending_subtasks") == {"has_pending_subtasks": True}
    task.run_to_end()
    assert (task.task_dir / "task_outputs" / "result.json").read_bytes() == expected_result("hello", 8)


def test_abort_subtask_returns_its_range_and_verify_refuses_it(task: WasmTask) -> None:
    task.create({"input": "hello", "difficulty": 8, "subtasks": 2})
    subtask_id, first = task.next_subtask()
    assert task.call("abort_subtask", subtask_id=subtask_id) == {}
    verdict = task.verify(subtask_id)
    assert verdict == {"result": "FAILURE", "reason": f"subtask {subtask_id} holds no assigned range"}
    _, again = task.next_subtask()
    assert again == first
    assert task.call("abort_task") == {}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"input": "a", "difficulty": 1, "subtasks": 1, "colour": 1, "b'q\"": 2}, "colour"),
        ({"input": ["it's"], "difficulty": 1, "subtasks": 1}, "input"),
        ({"input": "a", "difficulty": "4\n", "subtasks": 1}, "difficulty"),
        ({"difficulty": 1, "subtasks": 1}, "input"),
        ({"input": 5, "difficulty": 1, "subtasks": 1}, "input"),
        ({"input": "a", "difficulty": 41, "subtasks": 1}, "difficulty"),
        ({"input": "a", "difficulty": True, "subtasks": 1}, "difficulty"),
        ({"input": "a", "difficulty": 2.0, "subtasks": 1}, "difficulty"),
        ({"input": "a", "difficulty": 10**30, "subtasks": 1}, "difficulty"),
        ({"input": "a", "difficulty": 3, "subtasks": 0}, "subtasks"),
    ],
)
def test_bad_parameters_are_refused_naming_them(task: WasmTask, params: JsonDict, named: str) -> None:
    reply = task.create(params)
    assert reply["error"]["code"] == "INVALID_ARGUMENT"
    assert repr(named) in reply["error"]["message"]
    with pytest.raises(InvalidArgument) as python:
        parse_params(params, 100)
    if all(not isinstance(v, int) or abs(v) < 2**63 for v in params.values()):
        assert reply["error"]["message"] == str(python.value)  # an int beyond int64 reads as a float in C


def test_compute_refuses_bad_subtask_parameters(host: ModuleHost, tmp_path: Path) -> None:
    missing, _ = compute(host, tmp_path / "t", "s", {"input": "a", "difficulty": 1, "start": 0})
    assert missing.error == {"code": "INVALID_ARGUMENT", "message": "subtask parameter 'end' is missing"}
    reversed_range = {"input": "a", "difficulty": 1, "start": 9, "end": 2}
    backwards, _ = compute(host, tmp_path / "t", "s", reversed_range)
    assert backwards.error is not None and backwards.error["message"].startswith("bad subtask parameters")


def test_benchmark_and_malformed_requests(host: ModuleHost, tmp_path: Path) -> None:
    benchmark = host.run("benchmark", {})
    assert benchmark.reply is not None and benchmark.reply["score"] > 0
    unknown = host.run("no_such_operation", {}, tmp_path / "t")
    assert unknown.exit_code != 0 and "unknown operation" in unknown.stderr


def journal_lines(task: WasmTask) -> list[bytes]:
    """The plan journal's lines, header first, each with its newline (an unfinished last one without)."""
    return (task.state_dir / JOURNAL_FILE).read_bytes().splitlines(keepends=True)


def test_the_plan_is_written_whole_once_and_then_journalled_per_change_not_per_call(task: WasmTask) -> None:
    task.create({"input": "hello", "difficulty": 8, "subtasks": 3})
    snapshot = (task.state_dir / PLAN_FILE).read_bytes()
    assert journal_lines(task) == [b'{"generation": 1}\n']
    subtask_id, subtask = task.next_subtask()
    assert subtask is not None
    assert journal_lines(task)[1:] == [f'["assign", 0, "{subtask_id}"]\n'.encode()]
    for _ in range(3):  # calls that change nothing write nothing
        assert task.call("has_pending_subtasks") == {"has_pending_subtasks": True}
    assert task.verify("sub-unknown")["result"] == "FAILURE"
    assert task.call("abort_subtask", subtask_id="sub-unknown") == {}
    assert task.call("discard_subtasks", subtask_ids=["sub-unknown"]) == {"discarded_subtask_ids": []}
    assert len(journal_lines(task)) == 2
    task.deliver(subtask_id, task.compute(subtask_id, subtask["params"]))
    assert task.verify(subtask_id) == {"result": "SUCCESS", "reason": ""}
    nonce = Plan.load(task.state_dir).ranges[0].nonce
    assert journal_lines(task)[2] == f'["done", 0, {json.dumps(nonce)}]\n'.encode()
    task.run_to_end()
    assert (task.state_dir / PLAN_FILE).read_bytes() == snapshot, "create_task's snapshot was rewritten"
    changes = [json.loads(line) for line in journal_lines(task)[1:]]
    assert [change[0] for change in changes] == ["assign", "done"] * 3
    assert (task.task_dir / "task_outputs" / "result.json").read_bytes() == expected_result("hello", 8)


def test_an_unfinished_last_journal_line_is_ignored_and_cut_off(task: WasmTask) -> None:
    task.create({"input": "hello", "difficulty": 8, "subtasks": 3})
    first, _ = task.next_subtask()
    with (task.state_dir / JOURNAL_FILE).open("ab") as journal:
        journal.write(b'["release", 0')  # a process killed mid-append
    assert task.call("has_pending_subtasks") == {"has_pending_subtasks": True}
    second, subtask = task.next_subtask()
    assert subtask is not None and subtask["params"]["start"] == Plan.load(task.state_dir).bounds(1)[0]
    assert journal_lines(task)[1:] == [
        f'["assign", 0, "{first}"]\n'.encode(),
        f'["assign", 1, "{second}"]\n'.encode(),
    ]


def test_a_journal_of_an_older_snapshot_is_ignored_and_replaced(task: WasmTask) -> None:
    task.create({"input": "hello", "difficulty": 8, "subtasks": 3})
    task.next_subtask()
    # as if create_task was cut short between the new snapshot and its journal
    (task.state_dir / JOURNAL_FILE).write_bytes(b'{"generation": 0}\n["assign", 2, "sub-old"]\n')
    assert [r.state for r in Plan.load(task.state_dir).ranges] == [RangeState.PENDING] * 3
    subtask_id, subtask = task.next_subtask()
    assert subtask is not None and subtask["params"]["start"] == 0
    assert journal_lines(task) == [b'{"generation": 1}\n', f'["assign", 0, "{subtask_id}"]\n'.encode()]


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b'["assign", 7, "sub-x"]\n', b'["done", 0, "nonce"]\n', b'["grow", 0]\n', b"{}\n"],
)
def test_a_journal_line_the_plan_cannot_apply_is_a_corrupt_plan(task: WasmTask, line: bytes) -> None:
    task.create({"input": "hello", "difficulty": 8, "subtasks": 3})
    with (task.state_dir / JOURNAL_FILE).open("ab") as journal:
        journal.write(line)
    result = task.host.run("has_pending_subtasks", {"task_id": task.task_id}, task.task_dir)
    assert result.error is not None and result.error["code"] == "INTERNAL"
    assert result.error["message"].startswith(f"corrupt plan /task/{PLAN_FILE}: ")
    assert (task.state_dir / JOURNAL_FILE).read_bytes().endswith(line), "a damaged journal was changed"
