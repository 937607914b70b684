"""tutorialapp's requestor side: splits the nonce space into ranges and verifies claimed results."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from apps.sdk import (
    CreatedTask,
    InvalidArgument,
    JsonDict,
    RequestorAppHandler,
    RequestorTaskDir,
    Subtask,
    VerifyResult,
)
from apps.tutorialapp import pow
from apps.tutorialapp.plan import Plan, RangeState, open_plan

ENV_ID = "docker_cpu"
IMAGE = {"image": "taskapi/tutorialapp", "tag": "0.1.0"}
MIN_MEMORY_MIB = 64
"""What CreateTask says a provider needs: the builds' `resources.min_memory_mib` (a test keeps them equal)."""
MAX_DIFFICULTY = 40
DEFAULT_SUBTASKS = 8
"""Nonce ranges of a task that names no `subtasks` (descriptor.json's default)."""
MAX_SPOT_CHECKS = 4096
RESULT_FILE = "result.json"


def _int_param(params: JsonDict, name: str, low: int, high: int, default: int | None = None) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"task parameter {name!r} must be an integer in [{low}, {high}], got {value!r}")
    return value


def parse_params(params: JsonDict, max_subtasks_count: int) -> Plan:
    """Validate task parameters into a fresh plan, naming the first bad one."""
    unknown = set(params) - {"input", "difficulty", "subtasks"}
    if unknown:
        raise InvalidArgument(f"unknown task parameters: {sorted(unknown)}")
    text = params.get("input")
    if not isinstance(text, str):
        raise InvalidArgument(f"task parameter 'input' must be a string, got {text!r}")
    difficulty = _int_param(params, "difficulty", 0, MAX_DIFFICULTY)
    subtasks = _int_param(params, "subtasks", 1, 10_000, DEFAULT_SUBTASKS)
    return Plan.new(text, difficulty, min(subtasks, max_subtasks_count))


def check_claim(plan: Plan, index: int, claim: Any, seed: str) -> str | None:
    """Why the claimed result of range `index` is wrong, or None when it passes every check."""
    start, end = plan.bounds(index)
    if not isinstance(claim, dict) or claim.get("start") != start or claim.get("end") != end:
        return f"result does not describe the assigned range [{start}, {end})"
    if "nonce" not in claim:
        return "result has no 'nonce' field (a nonce, or null for none in range)"
    nonce = claim["nonce"]
    checked_end = end
    if nonce is None and plan.is_open(index):
        return f"the open-ended range [{start}, ...) always holds a valid nonce; the result names none"
    if nonce is not None:
        if isinstance(nonce, bool) or not isinstance(nonce, int) or not start <= nonce < end:
            return f"claimed nonce {nonce!r} is not in [{start}, {end})"
        hash_hex = pow.digest(plan.input, nonce).hex()
        if claim.get("hash") != hash_hex:
            return f"claimed hash does not match sha256 of nonce {nonce}"
        if not pow.meets(plan.input, nonce, plan.difficulty):
            return f"nonce {nonce} has fewer than {plan.difficulty} leading zero bits"
        checked_end = nonce
    span = checked_end - start
    sample_size = min(span, MAX_SPOT_CHECKS, max(64, span // 16))
    for candidate in random.Random(seed).sample(range(start, checked_end), sample_size):
        if pow.meets(plan.input, candidate, plan.difficulty):
            return f"spot check found valid nonce {candidate} that the result missed"
    return None


def create_task(task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict) -> None:
    """Validate the task's parameters and save its first plan."""
    parse_params(params, max_subtasks_count).save(task_dir.root)


def next_subtask(task_dir: RequestorTaskDir, subtask_id: str) -> Subtask | None:
    """Assign the lowest pending range to `subtask_id`; None when no range is worth computing now."""
    with open_plan(task_dir.root) as plan:
        index = plan.next_pending()
        if index is None:
            return None
        plan.assign(index, subtask_id)
    start, end = plan.bounds(index)
    return Subtask(params={"input": plan.input, "difficulty": plan.difficulty, "start": start, "end": end})


def verify(task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
    """Check a delivered result by recomputation and spot checks; a wrong one's range is pending again.

    A range already verified for this subtask (a verdict the node never heard, say cancelled at its stop)
    is judged again: the same result gets SUCCESS again and changes nothing.
    """
    with open_plan(task_dir.root) as plan:
        index = plan.index_of(subtask_id)
        if index is None:
            return VerifyResult.FAILURE, f"subtask {subtask_id} holds no assigned range"
        problem, nonce = _check_result(plan, index, task_dir, subtask_id)
        if plan.ranges[index].state is RangeState.DONE:
            if problem is not None or nonce != plan.ranges[index].nonce:
                return VerifyResult.FAILURE, f"subtask {subtask_id}'s range was verified with another result"
        elif problem is not None:
            plan.release(subtask_id)
            return VerifyResult.FAILURE, problem
        else:
            plan.complete(index, nonce)
    write_answer(plan, task_dir)  # again for a range verified before: that call may have ended before it
    return VerifyResult.SUCCESS, ""


def discard_subtasks(task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
    """Make the given subtasks' ranges pending again; the ids that held one."""
    with open_plan(task_dir.root) as plan:
        discarded = [subtask_id for subtask_id in subtask_ids if plan.release(subtask_id)]
    write_answer(plan, task_dir)
    return discarded


def has_pending_subtasks(task_dir: RequestorTaskDir) -> bool:
    with open_plan(task_dir.root) as plan:
        return plan.next_pending() is not None


def abort_subtask(task_dir: RequestorTaskDir, subtask_id: str) -> None:
    with open_plan(task_dir.root) as plan:
        plan.release(subtask_id)


def _check_result(
    plan: Plan, index: int, task_dir: RequestorTaskDir, subtask_id: str
) -> tuple[str | None, int | None]:
    """Why the subtask's delivered result for range `index` is wrong (None: it passes), and its nonce."""
    path = task_dir.subtask_outputs(subtask_id) / RESULT_FILE
    try:
        claim = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"unreadable {RESULT_FILE}: {exc}", None
    problem = check_claim(plan, index, claim, seed=subtask_id)
    return problem, None if problem is not None else claim["nonce"]


def write_answer(plan: Plan, task_dir: RequestorTaskDir) -> None:
    """Write task_outputs/result.json once the answer is certain; remove it if a discard undid that."""
    path = task_dir.task_outputs / RESULT_FILE
    nonce = plan.answer()
    if nonce is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"nonce": nonce, "hash": pow.digest(plan.input, nonce).hex()}) + "\n")


class TutorialRequestor(RequestorAppHandler):
    """Plans ranges, verifies claims by recomputation and spot checks, writes task_outputs/result.json.

    The work is done by this module's plain functions, which the component build (apps/tutorialapp/wit)
    calls too.
    """

    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        create_task(task_dir, max_subtasks_count, params)
        return CreatedTask(env_id=ENV_ID, prerequisites=IMAGE, min_memory_mib=MIN_MEMORY_MIB)

    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        return next_subtask(task_dir, subtask_id)

    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        return await asyncio.to_thread(verify, task_dir, subtask_id)

    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        return discard_subtasks(task_dir, subtask_ids)

    async def has_pending_subtasks(self, task_dir: RequestorTaskDir) -> bool:
        return has_pending_subtasks(task_dir)

    async def abort_task(self, task_dir: RequestorTaskDir) -> None:
        """Nothing to undo: the protocol layer stops all further calls on the task."""

    async def abort_subtask(self, task_dir: RequestorTaskDir, subtask_id: str) -> None:
        abort_subtask(task_dir, subtask_id)

    async def run_benchmark(self, work_dir: Path) -> float:
        return await asyncio.to_thread(pow.benchmark)
