"""Drives a gWASM app module through whole task lifecycles on the node's wasm host, operation by operation.

Every operation runs as the node runs it (`wasm_apps.run.ModuleHost`: the adapter's `WasmApp` on a
`WasmEnvironment`, its limits, deterministic profile and preopens). The requestor side gets one task dir in
the node's layout (the guest's `/task` is its `wasm_state/`); computes run in the provider's task dir of
the same task (`/output` is `<subtask_id>/`), and their output file is copied into the task's
subtask_outputs/<subtask_id>/ as the node delivers it. Driving the operations one by one (rather than
through the node) lets a test forge or damage a delivered result and look at the app's own state.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.wasm.app_adapter import WASM_STATE_DIR
from wasm_apps.run import Invocation, ModuleHost

JsonDict = dict[str, Any]
# Called with the delivered result file before verify: lets a test forge or damage it.
Tamper = Callable[[str, Path], None]


class ModuleFailed(AssertionError):
    """The module exited non-zero or wrote no reply."""


@dataclass
class WasmTask:
    """One task of one app: the requestor's task dir and the provider dirs of its subtasks."""

    host: ModuleHost
    root: Path
    task_id: str = "task-1"
    verdicts: dict[str, JsonDict] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def task_dir(self) -> Path:
        """The requestor's task dir."""
        return self.root / "requestor" / self.task_id

    @property
    def state_dir(self) -> Path:
        """What the guest sees as /task: the app's own state (its plan file, ...)."""
        return self.task_dir / WASM_STATE_DIR

    @property
    def provider_dir(self) -> Path:
        """The provider's task dir, where every compute of this task runs."""
        return self.root / "provider" / self.task_id

    def invoke(self, operation: str, request: JsonDict) -> Invocation:
        """Run a requestor-side operation and return what the module gave (exit code checked)."""
        result = self.host.run(operation, {"task_id": self.task_id, **request}, self.task_dir)
        if result.exit_code != 0 or result.reply is None:
            raise ModuleFailed(f"{operation} exited {result.exit_code}: {result.stderr}")
        return result

    def call(self, operation: str, **request: Any) -> JsonDict:
        """Run a requestor-side operation that must succeed; return its reply."""
        reply = self.invoke(operation, request).reply
        assert reply is not None
        assert "error" not in reply, f"{operation} refused: {reply['error']}"
        return reply

    def create(self, params: JsonDict, max_subtasks_count: int = 100) -> JsonDict:
        """create_task; returns the reply (which may be an error reply)."""
        reply = self.invoke("create_task", {"max_subtasks_count": max_subtasks_count, "params": params}).reply
        assert reply is not None
        return reply

    def next_subtask(self) -> tuple[str, JsonDict | None]:
        """A fresh subtask id and what next_subtask gave for it."""
        subtask_id = f"sub-{next(self._ids)}"
        reply = self.call("next_subtask", subtask_id=subtask_id, opaque_node_id="node-1")
        subtask: JsonDict | None = reply["subtask"]
        return subtask_id, subtask

    def compute(self, subtask_id: str, params: JsonDict) -> Path:
        """Run compute in the provider's task dir; return the output file."""
        result, output = compute(self.host, self.provider_dir, subtask_id, params)
        if result.exit_code != 0 or result.reply is None:
            raise ModuleFailed(f"compute exited {result.exit_code}: {result.stderr}")
        assert "error" not in result.reply, result.reply
        assert output is not None
        return output

    def deliver(self, subtask_id: str, output: Path) -> Path:
        """Copy a result file into subtask_outputs/<subtask_id>/ as the node does."""
        target = self.task_dir / "subtask_outputs" / subtask_id / output.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(output, target)
        return target

    def verify(self, subtask_id: str) -> JsonDict:
        verdict = self.call("verify", subtask_id=subtask_id)
        self.verdicts[subtask_id] = verdict
        return verdict

    def run_one(self, tamper: Tamper | None = None) -> tuple[str, JsonDict] | None:
        """next_subtask, compute, deliver, verify; None when no subtask is handed out."""
        subtask_id, subtask = self.next_subtask()
        if subtask is None:
            return None
        delivered = self.deliver(subtask_id, self.compute(subtask_id, subtask["params"]))
        if tamper is not None:
            tamper(subtask_id, delivered)
        return subtask_id, self.verify(subtask_id)

    def run_to_end(self, max_steps: int = 10_000) -> None:
        """Compute and verify subtasks until the app has none pending; every verdict must be SUCCESS."""
        for _ in range(max_steps):
            if not self.call("has_pending_subtasks")["has_pending_subtasks"]:
                return
            step = self.run_one()
            assert step is not None, "has_pending_subtasks said yes but next_subtask gave nothing"
            assert step[1] == {"result": "SUCCESS", "reason": ""}, step
        raise AssertionError(f"task not done after {max_steps} subtasks")


def compute(
    host: ModuleHost, task_dir: Path, subtask_id: str, params: JsonDict
) -> tuple[Invocation, Path | None]:
    """Run compute of `subtask_id` in the provider's `task_dir`; what it gave, and the file its reply named
    (None when it named none)."""
    result = host.run("compute", {"subtask_id": subtask_id, "params": params}, task_dir)
    named = None if result.reply is None else result.reply.get("output")
    return result, None if named is None else task_dir / subtask_id / str(named)
