"""Run one operation of a gWASM app by hand or from tests, on the node's own wasm host.

    python -m wasm_apps.run tutorialapp create_task --task /tmp/req/t1 <<< '{"max_subtasks_count": 4, ...}'
    python -m wasm_apps.run tutorialapp compute --task /tmp/prov/t1 < request.json

APP is an app name under wasm_apps/ or a path to a `.wasm` file (a command module or a task-api component).
Each operation runs exactly as a provider or requestor node runs it (`environments.wasm.app_adapter.WasmApp`
on a `WasmEnvironment`): a worker process, the default `WasmLimits`, the deterministic profile seeded by
the task and subtask ids, and the preopens of docs/wasm-apps.md. `--task DIR` is the task's dir in the
node's layout, and its name is the task id:

- requestor-side operations: DIR is the requestor's task dir; the guest sees `DIR/wasm_state` as `/task`
  and DIR's `task_inputs`, `subtask_inputs`, `subtask_outputs`, `task_outputs` inside it;
- `compute`: DIR is the provider's task dir; the guest sees `DIR/subtask_inputs` as `/inputs` and
  `DIR/<subtask_id>` as `/output`;
- `benchmark` needs no dir.

The request's `task_id` is filled in from DIR's name (a different one is refused). The reply goes to stdout;
the module's stderr, its exit code (or trap) and its fuel go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir, check_id
from environments.status import EnvStatus
from environments.wasm.app_adapter import (
    BENCHMARK_SEED,
    WasmApp,
    WasmModule,
    operation_seed,
    provider_preopens,
    requestor_preopens,
)
from environments.wasm.environment import WasmConfig, WasmEnvironment
from environments.wasm.runs import Preopen, WasmResult
from wasm_apps import app_names, module_path

PROVIDER_OPERATIONS = frozenset({"compute"})
STATELESS_OPERATIONS = frozenset({"benchmark"})


class BadInvocation(ValueError):
    """The operation cannot be run as asked (no task dir, a task id that is not the dir's, ...)."""


@dataclass(frozen=True)
class Invocation:
    """What one run of an operation gave: the node's `WasmResult` and, when it succeeded, the contract's
    reply (a component's typed result translated into it)."""

    result: WasmResult
    reply_bytes: bytes

    @property
    def reply(self) -> dict[str, Any] | None:
        """The reply, a JSON object; None when the run failed or printed nothing (ValueError when it is
        not a JSON object)."""
        if not self.reply_bytes.strip():
            return None
        value = json.loads(self.reply_bytes)
        if not isinstance(value, dict):
            raise ValueError(f"the reply is not a JSON object: {self.reply_bytes[:200]!r}")
        return value

    @property
    def exit_code(self) -> int | None:
        """The module's exit code; None when it trapped before exiting."""
        return self.result.exit_code

    @property
    def stderr(self) -> str:
        return self.result.stderr.decode("utf-8", errors="replace")

    @property
    def fuel(self) -> int:
        return self.result.fuel

    @property
    def error(self) -> dict[str, Any] | None:
        """The reply's `error` object, if the module refused the call."""
        return None if self.reply is None else self.reply.get("error")


class ModuleHost:
    """One app module on a wasm environment of its own; runs its operations as the node does.

    Use it as a context manager (or call `close`): it owns an event loop and the environment's workers.
    """

    def __init__(self, module: Path, config: WasmConfig | None = None) -> None:
        loaded = WasmModule.load(module)
        self.environment = WasmEnvironment(config)
        self.app = WasmApp(loaded, self.environment)
        self._loop = asyncio.Runner()

    def __enter__(self) -> ModuleHost:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the environment's workers and the event loop."""
        try:
            if self.environment.status() in (EnvStatus.ENABLED, EnvStatus.ERROR):
                self._loop.run(self.environment.clean_up())
        finally:
            self._loop.close()

    def run(self, operation: str, request: dict[str, Any], task_dir: Path | None = None) -> Invocation:
        """Run `operation` with `request` (its `task_id` taken from `task_dir`'s name) on the preopens the
        node gives that operation; raises `BadInvocation` when it cannot be run so."""
        request, seed, preopens = _placed(operation, request, task_dir)
        result = self._loop.run(self.app.run(operation, request, seed=seed, preopens=preopens))
        return Invocation(result, self.app.reply_of(operation, result) if result.ok else b"")


def _placed(
    operation: str, request: dict[str, Any], task_dir: Path | None
) -> tuple[dict[str, Any], str, tuple[Preopen, ...]]:
    """The request as the node sends it, its seed and its preopens (folders created as the node has them)."""
    if operation in STATELESS_OPERATIONS:
        return request, BENCHMARK_SEED, ()
    if task_dir is None:
        raise BadInvocation(f"{operation} needs a task dir (--task DIR)")
    task_id = _checked("task id (the task dir's name)", task_dir.name)
    if request.get("task_id", task_id) != task_id:
        raise BadInvocation(
            f"the request's task_id {request['task_id']!r} is not the task dir's name {task_id!r}"
        )
    request = {**request, "task_id": task_id}
    subtask_id = request.get("subtask_id")
    if subtask_id is not None:
        if not isinstance(subtask_id, str):
            raise BadInvocation(f"the request's subtask_id must be a string, got {subtask_id!r}")
        _checked("subtask id", subtask_id)
    if operation in PROVIDER_OPERATIONS:
        if subtask_id is None:
            raise BadInvocation(f"{operation} needs a subtask_id in the request (it names the output folder)")
        provider = ProviderTaskDir(task_dir)
        provider.prepare()
        provider.subtask_dir(subtask_id).mkdir(exist_ok=True)
        return request, operation_seed(task_id, subtask_id), provider_preopens(provider, subtask_id)
    requestor = RequestorTaskDir(task_dir)
    requestor.prepare()
    return request, operation_seed(task_id, subtask_id), requestor_preopens(requestor)


def _checked(kind: str, value: str) -> str:
    """`value` if it is an id the node would accept (one safe path component), else `BadInvocation`."""
    try:
        return check_id(kind, value)
    except ValueError as exc:
        raise BadInvocation(str(exc)) from exc


def resolve_module(app: str) -> Path:
    """An app name under wasm_apps/ or a path to a module."""
    path = Path(app)
    if path.suffix == ".wasm":
        return path
    if app not in app_names():
        raise BadInvocation(
            f"unknown app {app!r}: wasm_apps has {', '.join(app_names())}, or name a .wasm file"
        )
    return module_path(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wasm_apps.run", description=__doc__.split("\n")[0])
    parser.add_argument("app", help="app name under wasm_apps/ or path to a .wasm module")
    parser.add_argument("operation")
    parser.add_argument(
        "--task", type=Path, help="the task's dir in the node's layout (its name is the task id)"
    )
    args = parser.parse_args(argv)
    try:
        request = json.loads(sys.stdin.read() or "{}")
    except json.JSONDecodeError as exc:
        parser.error(f"the request on stdin is not JSON: {exc}")
    if not isinstance(request, dict):
        parser.error("the request on stdin must be a JSON object")
    try:
        module = resolve_module(args.app)
        with ModuleHost(module) as host:
            invocation = host.run(args.operation, request, args.task)
    except (BadInvocation, OSError) as exc:
        parser.error(str(exc))
    result = invocation.result
    sys.stderr.write(invocation.stderr)
    sys.stdout.write((invocation.reply_bytes or result.stdout).decode(errors="replace"))
    ending = f"trap: {result.trap.message}" if result.trap else f"exit code {result.exit_code}"
    print(f"{ending}, fuel {result.fuel}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
