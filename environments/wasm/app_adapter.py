"""Serves a gWASM app (one WASI command module, or a task-api component) as ordinary task-api handlers.

Every handler call becomes one sandboxed invocation of the module, exactly as `docs/wasm-apps.md`
says: argv `app <operation>`, the request as JSON on stdin, the reply as JSON on stdout, only
`TASKAPI_OPERATION` in the environment, the doc's preopens, and the deterministic profile seeded with
`<task_id>/<subtask_id>` (just `<task_id>` for task-wide calls), so that `compute` and `verify` of one
subtask see the same random stream. Error replies map to `apps.sdk.errors`; a run that traps or exits
non-zero is an INTERNAL `AppError` carrying the trap and stderr's tail.

A component (protos/taskapi.wit) gets the same preopens, seeds and checks: `component_adapter` turns
each operation into a call of its typed export and the typed result back into the same reply.

On the provider side the task id is the name of the provider's task dir (the node lays it out as
`.../<task_id>`), since the SDK's `compute` does not pass it. `WasmApp.run` is the one way an operation is
run, for the node and for `python -m wasm_apps.run` (the guest tests' host) alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.sdk.batch import BatchRequestorHandler, SubtaskBatch
from apps.sdk.errors import (
    AlreadyExists,
    AppError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from apps.sdk.handlers import (
    CreatedTask,
    JsonDict,
    ProviderAppHandler,
    RequestorAppHandler,
    Subtask,
    VerifyResult,
)
from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir
from environments.base import UsageCounters
from environments.status import EnvStatus
from environments.wasm.component import file_is_component
from environments.wasm.component_adapter import component_run, contract_reply
from environments.wasm.environment import WasmEnvironment
from environments.wasm.errors import DigestMismatch, WasmError
from environments.wasm.runs import (
    DEFAULT_FUEL,
    DEFAULT_WALL_TIME_S,
    Determinism,
    Preopen,
    WasmLimits,
    WasmResult,
    WasmRun,
)

ERRORS: dict[str, type[AppError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "FAILED_PRECONDITION": FailedPrecondition,
    "UNAVAILABLE": Unavailable,
    "INTERNAL": AppError,
}
BENCHMARK_SEED = "benchmark"


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _Error(_Reply):
    code: Literal[
        "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNAVAILABLE", "INTERNAL"
    ]
    message: str


class _ErrorReply(_Reply):
    error: _Error


class _Empty(_Reply):
    pass


class _CreateTask(_Reply):
    min_memory_mib: float = Field(default=0.0, ge=0)
    subtask_fuel: int | None = Field(default=None, gt=0)
    subtask_wall_time_s: float | None = Field(default=None, gt=0)


class ComputeLimits(BaseModel):
    """The budget of every Compute of a task: fuel and a wall-clock deadline.

    The app's `create_task` reply may set them (`subtask_fuel`, `subtask_wall_time_s`); otherwise they are
    `DEFAULT_FUEL` and `DEFAULT_WALL_TIME_S`. They travel to providers in the task's prerequisites
    (`"limits"`), and each provider tightens its own maxima to them (`within`).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    fuel: int = Field(default=DEFAULT_FUEL, gt=0)
    wall_time_s: float = Field(default=DEFAULT_WALL_TIME_S, gt=0, allow_inf_nan=False)

    @classmethod
    def of_task(cls, prerequisites_json: str) -> ComputeLimits:
        """The limits in a task's prerequisites (the defaults where a requestor set none)."""
        try:
            limits = json.loads(prerequisites_json or "{}").get("limits", {})
            return cls.model_validate(limits)
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"the task's compute limits are malformed: {str(exc)[:300]}") from exc

    def within(self, maxima: WasmLimits) -> WasmLimits:
        """`maxima` (a provider's own limits) with fuel and wall time no higher than this budget."""
        return dataclasses.replace(
            maxima, fuel=min(self.fuel, maxima.fuel), wall_time_s=min(self.wall_time_s, maxima.wall_time_s)
        )


class _SubtaskSpec(_Reply):
    params: dict[str, Any]
    resources: list[str] = Field(default_factory=list)


class _NextSubtask(_Reply):
    subtask: _SubtaskSpec | None


class _Verify(_Reply):
    result: Literal["SUCCESS", "FAILURE", "AWAITING_DATA", "INCONCLUSIVE"]
    reason: str = ""


class _NextSubtasks(_Reply):
    replies: list[_NextSubtask]
    has_pending_subtasks: bool


class _VerifyBatch(_Reply):
    verdicts: list[_Verify]


class _Discard(_Reply):
    discarded_subtask_ids: list[str]


class _HasPending(_Reply):
    has_pending_subtasks: bool


class _Benchmark(_Reply):
    score: float = Field(gt=0)


class _Compute(_Reply):
    output: str


ReplyT = TypeVar("ReplyT", bound=_Reply)


@dataclass(frozen=True)
class WasmModule:
    """An app's module file, the sha256 of its bytes, and whether it is a task-api component
    (protos/taskapi.wit) rather than a WASI command module."""

    path: Path
    sha256: str
    component: bool = False

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> WasmModule:
        """Hash the file; with `expected_sha256`, raise `DigestMismatch` unless it matches."""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            raise DigestMismatch(f"module {path} has sha256 {digest}, but {expected_sha256} was expected")
        return cls(path.resolve(), digest, file_is_component(path))


WASM_STATE_DIR = "wasm_state"
"""The folder of the task dir that a guest sees as `/task`: its own state, and nothing of the node's."""


def requestor_preopens(task_dir: RequestorTaskDir) -> tuple[Preopen, ...]:
    """The requestor side's view of a task (docs/wasm-apps.md).

    `/task` is a folder of its own, not the task dir: a guest that opens paths relative to the `/task`
    descriptor directly (bypassing libc's longest-prefix choice of preopen) can reach only its own state,
    never task_inputs, delivered results or the SDK's protocol record.
    """
    state = task_dir.root / WASM_STATE_DIR
    state.mkdir(exist_ok=True)
    return (
        Preopen(state, "/task", writable=True),
        Preopen(task_dir.task_inputs, "/task/task_inputs"),
        Preopen(task_dir.subtask_inputs, "/task/subtask_inputs", writable=True),
        Preopen(task_dir.subtask_outputs_root, "/task/subtask_outputs"),
        Preopen(task_dir.task_outputs, "/task/task_outputs", writable=True),
    )


def provider_preopens(task_dir: ProviderTaskDir, subtask_id: str) -> tuple[Preopen, ...]:
    """The provider side's view of one subtask (docs/wasm-apps.md)."""
    return (
        Preopen(task_dir.subtask_inputs, "/inputs"),
        Preopen(task_dir.subtask_dir(subtask_id), "/output", writable=True),
    )


def operation_seed(task_id: str, subtask_id: str | None = None) -> str:
    """The deterministic profile's seed of an operation: `<task_id>/<subtask_id>` for a subtask's calls
    (so `compute` and `verify` of one subtask see the same random stream), `<task_id>` for task-wide ones."""
    return task_id if subtask_id is None else f"{task_id}/{subtask_id}"


class WasmApp:
    """Invokes one module's operations in a wasm environment, which it prepares on first use."""

    def __init__(self, module: WasmModule, environment: WasmEnvironment) -> None:
        self.module = module
        self.environment = environment
        self._ready = asyncio.Lock()

    @property
    def prerequisites(self) -> JsonDict:
        return {"module": self.module.path.name, "sha256": self.module.sha256}

    async def run(
        self,
        operation: str,
        request: JsonDict,
        *,
        seed: str,
        preopens: tuple[Preopen, ...] = (),
        limits: WasmLimits | None = None,
        warm: bool = False,
    ) -> WasmResult:
        """Run `operation` once (under `limits`, else the environment's) in the deterministic profile seeded
        by `seed`, and return the run as it ended, failed or not. `WasmError` if it could not run at all.
        `warm`: a component may be called on a live instance kept from such a call (`ComponentRun.warm`)."""
        async with self._ready:
            if self.environment.status() is not EnvStatus.ENABLED:
                await self.environment.prepare()
        run = self._run(operation, request, preopens, Determinism(seed), warm)
        return await self.environment.run(dataclasses.replace(run, limits=limits))

    def reply_of(self, operation: str, result: WasmResult) -> bytes:
        """The contract's JSON reply in a successful run (a component's typed result translated)."""
        return contract_reply(operation, result.stdout) if self.module.component else result.stdout

    async def invoke(
        self,
        operation: str,
        request: JsonDict,
        reply_type: type[ReplyT],
        *,
        seed: str,
        preopens: tuple[Preopen, ...] = (),
        limits: WasmLimits | None = None,
        warm: bool = False,
    ) -> tuple[ReplyT, WasmResult]:
        """Run `operation` (under `limits`, else the environment's; `warm` as for `run`); return its checked
        reply and the run (fuel, wall time, usage)."""
        result = await self.run_or_fail(
            operation, request, seed=seed, preopens=preopens, limits=limits, warm=warm
        )
        return self.checked_reply(operation, result, reply_type), result

    async def run_or_fail(
        self,
        operation: str,
        request: JsonDict,
        *,
        seed: str,
        preopens: tuple[Preopen, ...] = (),
        limits: WasmLimits | None = None,
        warm: bool = False,
    ) -> WasmResult:
        """`run`, with an `AppError` where the module could not run at all."""
        try:
            return await self.run(operation, request, seed=seed, preopens=preopens, limits=limits, warm=warm)
        except WasmError as exc:
            raise AppError(f"wasm app {self.module.path.name} could not run {operation}: {exc}") from exc

    def checked_reply(self, operation: str, result: WasmResult, reply_type: type[ReplyT]) -> ReplyT:
        """The reply of a run of `operation`; `AppError` if the run failed or its reply is not one."""
        if not result.ok:
            raise AppError(
                f"wasm app {self.module.path.name} failed in {operation}: {result.describe_failure()}"
            )
        return self._parse(operation, self.reply_of(operation, result), reply_type)

    def _run(
        self,
        operation: str,
        request: JsonDict,
        preopens: tuple[Preopen, ...],
        determinism: Determinism,
        warm: bool,
    ) -> WasmRun:
        """A command module's invocation (never warm: it runs `_start` once), or for a component the call
        of the operation's function."""
        if self.module.component:
            return component_run(
                self.module.path,
                self.module.sha256,
                operation,
                request,
                preopens=preopens,
                determinism=determinism,
                warm=warm,
            )
        return WasmRun(
            module=self.module.path,
            sha256=self.module.sha256,
            argv=("app", operation),
            env=(("TASKAPI_OPERATION", operation),),
            stdin=json.dumps(request).encode(),
            preopens=preopens,
            determinism=determinism,
        )

    def _parse(self, operation: str, stdout: bytes, reply_type: type[ReplyT]) -> ReplyT:
        where = f"wasm app {self.module.path.name} replied to {operation}"
        try:
            reply = json.loads(stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AppError(
                f"{where} with something that is not JSON: {exc}; stdout: {stdout[:200]!r}"
            ) from exc
        if not isinstance(reply, dict):
            raise AppError(f"{where} with JSON that is not an object: {stdout[:200]!r}")
        try:
            if "error" in reply:
                error = _ErrorReply.model_validate(reply).error
                raise ERRORS[error.code](error.message)
            return reply_type.model_validate(reply)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, item['loc'])) or 'reply'}: {item['msg']}" for item in exc.errors()
            )
            raise AppError(f"{where} with an invalid reply ({problems}): {stdout[:200]!r}") from exc

    async def benchmark(self) -> float:
        """The module's benchmark: its reported work divided by the wall-clock seconds it took."""
        reply, result = await self.invoke("benchmark", {}, _Benchmark, seed=BENCHMARK_SEED)
        return reply.score * 1000 / max(result.wall_ms, 1e-3)


class WasmRequestorApp(RequestorAppHandler, BatchRequestorHandler):
    """The requestor side of a gWASM app.

    `warm` (the default): a component's calls of one task share a live instance (`ComponentRun.warm`;
    the node trusts its own requestor app); False: a fresh instance a call, as for a provider's compute.

    Batches (apps/sdk/batch.py) are one invocation of a command module's `next_subtasks` / `verify_batch`
    (docs/wasm-apps.md). A module without them exits non-zero on the first (an unknown operation), and from
    then on, as for a component (its WIT has no batch functions), the SDK server runs the single calls.
    """

    def __init__(self, app: WasmApp, *, warm: bool = True) -> None:
        self.app = app
        self.warm = warm
        self._batches: bool | None = False if app.module.component else None
        """Whether the module runs batch operations: None until the first batch tells."""

    async def _task_call(
        self,
        operation: str,
        task_dir: RequestorTaskDir,
        reply_type: type[ReplyT],
        subtask_id: str | None = None,
        **fields: Any,
    ) -> ReplyT:
        task_id = task_dir.root.name
        request: JsonDict = {"task_id": task_id, **fields}
        if subtask_id is not None:
            request["subtask_id"] = subtask_id
        reply, _ = await self.app.invoke(
            operation,
            request,
            reply_type,
            seed=operation_seed(task_id, subtask_id),
            preopens=requestor_preopens(task_dir),
            warm=self.warm,
        )
        return reply

    async def create_task(
        self, task_dir: RequestorTaskDir, max_subtasks_count: int, params: JsonDict
    ) -> CreatedTask:
        reply = await self._task_call(
            "create_task", task_dir, _CreateTask, max_subtasks_count=max_subtasks_count, params=params
        )
        limits = ComputeLimits(
            fuel=reply.subtask_fuel or DEFAULT_FUEL,
            wall_time_s=reply.subtask_wall_time_s or DEFAULT_WALL_TIME_S,
        )
        return CreatedTask(
            env_id=WasmEnvironment.env_id,
            prerequisites={**self.app.prerequisites, "limits": limits.model_dump()},
            min_memory_mib=reply.min_memory_mib,
        )

    async def next_subtask(
        self, task_dir: RequestorTaskDir, subtask_id: str, opaque_node_id: str
    ) -> Subtask | None:
        reply = await self._task_call(
            "next_subtask", task_dir, _NextSubtask, subtask_id, opaque_node_id=opaque_node_id
        )
        if reply.subtask is None:
            return None
        return Subtask(params=reply.subtask.params, resources=list(reply.subtask.resources))

    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        reply = await self._task_call("verify", task_dir, _Verify, subtask_id)
        return VerifyResult[reply.result], reply.reason

    async def next_subtasks(
        self, task_dir: RequestorTaskDir, asks: Sequence[tuple[str, str]]
    ) -> SubtaskBatch | None:
        request = [{"subtask_id": subtask_id, "opaque_node_id": node} for subtask_id, node in asks]
        reply = await self._batch_call("next_subtasks", task_dir, _NextSubtasks, asks=request)
        if reply is None:
            return None
        subtasks = [
            None if one.subtask is None else Subtask(one.subtask.params, list(one.subtask.resources))
            for one in reply.replies
        ]
        return SubtaskBatch(subtasks, reply.has_pending_subtasks)

    async def verify_batch(
        self, task_dir: RequestorTaskDir, subtask_ids: Sequence[str]
    ) -> list[tuple[VerifyResult, str]] | None:
        reply = await self._batch_call("verify_batch", task_dir, _VerifyBatch, subtask_ids=list(subtask_ids))
        if reply is None:
            return None
        return [(VerifyResult[one.result], one.reason) for one in reply.verdicts]

    async def _batch_call(
        self, operation: str, task_dir: RequestorTaskDir, reply_type: type[ReplyT], **fields: Any
    ) -> ReplyT | None:
        """A batch operation's reply, in the task's deterministic profile (one run serves many subtasks);
        None when the module does not run batches."""
        if self._batches is False:
            return None
        task_id = task_dir.root.name
        result = await self.app.run_or_fail(
            operation,
            {"task_id": task_id, **fields},
            seed=operation_seed(task_id),
            preopens=requestor_preopens(task_dir),
        )
        if self._batches is None:
            # A first batch that exits non-zero without trapping met an operation the module lacks.
            self._batches = result.trap is not None or result.exit_code == 0
            if not self._batches:
                return None
        return self.app.checked_reply(operation, result, reply_type)

    async def discard_subtasks(self, task_dir: RequestorTaskDir, subtask_ids: list[str]) -> list[str]:
        reply = await self._task_call("discard_subtasks", task_dir, _Discard, subtask_ids=subtask_ids)
        return list(reply.discarded_subtask_ids)

    async def has_pending_subtasks(self, task_dir: RequestorTaskDir) -> bool:
        reply = await self._task_call("has_pending_subtasks", task_dir, _HasPending)
        return reply.has_pending_subtasks

    async def abort_task(self, task_dir: RequestorTaskDir) -> None:
        await self._task_call("abort_task", task_dir, _Empty)

    async def abort_subtask(self, task_dir: RequestorTaskDir, subtask_id: str) -> None:
        await self._task_call("abort_subtask", task_dir, _Empty, subtask_id)

    async def run_benchmark(self, work_dir: Path) -> float:
        return await self.app.benchmark()


class WasmProviderApp(ProviderAppHandler):
    """The provider side of a gWASM app."""

    def __init__(self, app: WasmApp) -> None:
        self.app = app

    async def compute(self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict) -> Path:
        output, _ = await self.compute_with_usage(task_dir, subtask_id, params)
        return output

    async def compute_with_usage(
        self, task_dir: ProviderTaskDir, subtask_id: str, params: JsonDict, limits: WasmLimits | None = None
    ) -> tuple[Path, UsageCounters]:
        """`compute` under `limits` (else the environment's), also returning what the run used (fuel, wall
        time, cpu, memory) for billing."""
        task_id = task_dir.root.name
        request: JsonDict = {"task_id": task_id, "subtask_id": subtask_id, "params": params}
        reply, result = await self.app.invoke(
            "compute",
            request,
            _Compute,
            seed=operation_seed(task_id, subtask_id),
            preopens=provider_preopens(task_dir, subtask_id),
            limits=limits,
        )
        output = PurePosixPath(reply.output)
        if output.is_absolute() or not output.parts or ".." in output.parts:
            raise AppError(
                f"wasm app {self.app.module.path.name} named output {reply.output!r}: "
                "it must be a relative path under /output"
            )
        return Path(subtask_id, *output.parts), result.usage()

    async def run_benchmark(self, work_dir: Path) -> float:
        return await self.app.benchmark()
