"""Serves a task-api component (protos/taskapi.wit) through the same adapter as a WASI command module.

The adapter (`environments.wasm.app_adapter`) speaks the JSON guest contract of docs/wasm-apps.md; this
module translates each operation of that contract into a call of the component's typed export
(`component_run`) and the typed result back into the contract's reply (`contract_reply`), so both kinds
of app share the state-machine checks, preopens, seeds, limits and reply validation. A component's
`error` result becomes the contract's `{"error": {"code", "message"}}`, so it reaches the caller with
the gRPC status of its case.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.sdk.errors import AppError
from environments.wasm.component import ComponentRun
from environments.wasm.runs import Determinism, Preopen

WIT_PACKAGE = "taskapi:app@0.1.0"
"""The package of protos/taskapi.wit (a test checks they agree)."""

JsonDict = dict[str, Any]


def interface_name(side: str) -> str:
    """The export name of one side's interface, e.g. `taskapi:app/provider@0.1.0`."""
    name, version = WIT_PACKAGE.split("@")
    return f"{name}/{side}@{version}"


def _json(text: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise AppError(f"the component's {what} is not valid JSON: {exc}") from exc


def _create_task(request: JsonDict) -> JsonDict:
    return {
        "task-id": request["task_id"],
        "max-subtasks-count": request["max_subtasks_count"],
        "task-params-json": json.dumps(request["params"]),
    }


def _created(reply: JsonDict) -> JsonDict:
    return {"min_memory_mib": reply["inf-requirements"]["min-memory-mib"]}


def _next_subtask(request: JsonDict) -> JsonDict:
    return {
        "task-id": request["task_id"],
        "subtask-id": request["subtask_id"],
        "opaque-node-id": request["opaque_node_id"],
    }


def _subtask(reply: JsonDict) -> JsonDict:
    subtask = reply["subtask"]
    if subtask is None:
        return {"subtask": None}
    params = _json(subtask["subtask-params-json"], "subtask-params-json")
    return {"subtask": {"params": params, "resources": subtask["resources"]}}


def _task(request: JsonDict) -> JsonDict:
    return {"task-id": request["task_id"]}


def _subtask_of_task(request: JsonDict) -> JsonDict:
    return {"task-id": request["task_id"], "subtask-id": request["subtask_id"]}


def _verdict(reply: JsonDict) -> JsonDict:
    return {"result": str(reply["result"]).upper().replace("-", "_"), "reason": reply["reason"]}


def _discard(request: JsonDict) -> JsonDict:
    return {"task-id": request["task_id"], "subtask-ids": request["subtask_ids"]}


def _compute(request: JsonDict) -> JsonDict:
    return {
        "task-id": request["task_id"],
        "subtask-id": request["subtask_id"],
        "subtask-params-json": json.dumps(request["params"]),
    }


def _renamed(**names: str) -> Callable[[JsonDict], JsonDict]:
    """A reply translation that only renames fields (contract name = WIT name)."""
    return lambda reply: {contract: reply[wit] for contract, wit in names.items()}


@dataclass(frozen=True)
class Operation:
    """How one operation of the JSON contract maps to a function of the WIT world."""

    side: str
    function: str
    request: Callable[[JsonDict], JsonDict] | None
    reply: Callable[[JsonDict], JsonDict] | None


OPERATIONS: dict[str, Operation] = {
    "create_task": Operation("requestor", "create-task", _create_task, _created),
    "next_subtask": Operation("requestor", "next-subtask", _next_subtask, _subtask),
    "verify": Operation("requestor", "verify", _subtask_of_task, _verdict),
    "discard_subtasks": Operation(
        "requestor", "discard-subtasks", _discard, _renamed(discarded_subtask_ids="discarded-subtask-ids")
    ),
    "has_pending_subtasks": Operation(
        "requestor", "has-pending-subtasks", _task, _renamed(has_pending_subtasks="has-pending-subtasks")
    ),
    "abort_task": Operation("requestor", "abort-task", _task, None),
    "abort_subtask": Operation("requestor", "abort-subtask", _subtask_of_task, None),
    "benchmark": Operation("provider", "run-benchmark", None, _renamed(score="score")),
    "compute": Operation("provider", "compute", _compute, _renamed(output="output-filepath")),
}
"""Every operation of docs/wasm-apps.md. `benchmark` is the provider side's run-benchmark."""


def component_run(
    module: Path,
    sha256: str,
    operation: str,
    request: JsonDict,
    *,
    preopens: tuple[Preopen, ...],
    determinism: Determinism,
    warm: bool = False,
) -> ComponentRun:
    """The call of the component's function for one operation of the contract, with `request`'s fields.

    `warm` (`ComponentRun.warm`): one live instance serves every operation, so its argv is just `app` and
    it has no `TASKAPI_OPERATION` (the function called is the operation).
    """
    mapping = OPERATIONS[operation]
    args = () if mapping.request is None else (mapping.request(request),)
    return ComponentRun(
        module=module,
        sha256=sha256,
        argv=("app",) if warm else ("app", operation),
        env=() if warm else (("TASKAPI_OPERATION", operation),),
        preopens=preopens,
        determinism=determinism,
        interface=interface_name(mapping.side),
        function=mapping.function,
        args=args,
        warm=warm,
    )


def contract_reply(operation: str, returned: bytes) -> bytes:
    """The contract's JSON reply for what the component's function returned (`{"ok"|"err": ...}`)."""
    value = _json(returned, f"reply to {operation}")
    if not isinstance(value, dict) or len(value) != 1 or not {"ok", "err"} >= set(value):
        raise AppError(f"the component's reply to {operation} is not a WIT result: {returned[:200]!r}")
    if "err" in value:
        error = value["err"]
        code = str(error["tag"]).upper().replace("-", "_")
        return json.dumps({"error": {"code": code, "message": error["value"]}}).encode()
    translate = OPERATIONS[operation].reply
    return json.dumps({} if translate is None else translate(value["ok"])).encode()
