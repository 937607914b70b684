"""tutorialapp as a task-api component: the WIT `app` world's exports over the same handler functions.

Built by scripts/build_components with componentize-py into apps/tutorialapp/wasm/tutorialapp.wasm;
the results equal those of the local, docker and C-wasm builds because the work is done by the very
functions `TutorialRequestor` / `TutorialProvider` call.
"""

from __future__ import annotations

import json
from typing import Any

from wit_world.imports import types  # type: ignore[import-not-found]

from apps.sdk.component import PROVIDER_OUTPUT, REQUESTOR_TASK_DIR, params_of, refusals
from apps.tutorialapp import pow, provider, requestor

TASK = REQUESTOR_TASK_DIR


class Requestor:
    """The `requestor` interface."""

    def create_task(self, request: Any) -> Any:
        with refusals():
            params = params_of(request.task_params_json, "task_params_json")
            requestor.create_task(TASK, request.max_subtasks_count, params)
        return types.CreateTaskReply("", "", types.Infrastructure(float(requestor.MIN_MEMORY_MIB)))

    def next_subtask(self, request: Any) -> Any:
        with refusals():
            subtask = requestor.next_subtask(TASK, request.subtask_id)
        if subtask is None:
            return types.NextSubtaskReply(None)
        return types.NextSubtaskReply(types.SubtaskReply(json.dumps(subtask.params), list(subtask.resources)))

    def verify(self, request: Any) -> Any:
        with refusals():
            verdict, reason = requestor.verify(TASK, request.subtask_id)
        return types.VerifyReply(types.VerifyResult[verdict.name], reason)

    def discard_subtasks(self, request: Any) -> Any:
        with refusals():
            discarded = requestor.discard_subtasks(TASK, list(request.subtask_ids))
        return types.DiscardSubtasksReply(discarded)

    def run_benchmark(self) -> Any:
        return benchmark()

    def has_pending_subtasks(self, request: Any) -> Any:
        with refusals():
            return types.HasPendingSubtasksReply(requestor.has_pending_subtasks(TASK))

    def abort_task(self, request: Any) -> None:
        """Nothing to undo: the node stops all further calls on the task."""

    def abort_subtask(self, request: Any) -> None:
        with refusals():
            requestor.abort_subtask(TASK, request.subtask_id)


class Provider:
    """The `provider` interface."""

    def compute(self, request: Any) -> Any:
        with refusals():
            result = provider.search_range(params_of(request.subtask_params_json, "subtask_params_json"))
            (PROVIDER_OUTPUT / requestor.RESULT_FILE).write_text(json.dumps(result))
        return types.ComputeReply(requestor.RESULT_FILE)

    def run_benchmark(self) -> Any:
        return benchmark()


def benchmark() -> Any:
    """A fixed amount of hashing, reported as its count: the node times it (clocks are virtual here)."""
    with refusals():
        return types.RunBenchmarkReply(float(pow.fixed_work()))
