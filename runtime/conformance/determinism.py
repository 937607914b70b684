"""wasm_compute_deterministic: one subtask computed twice, in two fresh provider dirs, by the adapter.

The subtask comes from the requestor under test (NextSubtask of a new task). Both runs use
`WasmProviderApp.compute_with_usage` directly, in dirs with the same name (the wasm adapter seeds the
deterministic profile with `<task dir name>/<subtask id>`), so only what the guest does differs: their
output bytes and fuel must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path

from grpclib.const import Status
from hypothesis import reject
from hypothesis import strategies as st

from apps.sdk.workdir import ProviderTaskDir
from environments.wasm.app_adapter import WasmApp, WasmModule, WasmProviderApp
from environments.wasm.environment import WasmEnvironment
from runtime.conformance.properties import Checks
from runtime.conformance.session import PROVIDER_TASK_DIR, Session
from runtime.conformance.task_properties import ExampleBody
from runtime.conformance.wire import Hang, copy_resources

OWNER = "wasm_compute_deterministic"


class WasmTwin:
    """The app's wasm module in an in-process wasm environment, for direct compute runs."""

    def __init__(self, session: Session, module: Path) -> None:
        self.session = session
        self.environment = WasmEnvironment()
        session.loop.run(self.environment.prepare(), "prepare of the wasm environment")
        self.app = WasmProviderApp(WasmApp(WasmModule.load(module), self.environment))

    def compute(
        self, checks: Checks, task_dir: ProviderTaskDir, subtask_id: str, params_json: str
    ) -> tuple[bytes, int | None]:
        """Output bytes and fuel of one run; an example over the compute budget is dropped."""
        task_dir.prepare()
        task_dir.subtask_dir(subtask_id).mkdir(exist_ok=True)
        try:
            output, usage = self.session.loop.run(
                self.app.compute_with_usage(task_dir, subtask_id, json.loads(params_json)),
                f"compute of {subtask_id}",
                self.session.config.compute_budget_s,
            )
        except Hang:
            reject()
        except Exception as exc:
            checks.fail_and_drop(
                "provider_protocol", f"the wasm compute of subtask {subtask_id} failed: {exc}"
            )
        return (task_dir.root / output).read_bytes(), usage.fuel

    def close(self) -> None:
        self.session.loop.run(self.environment.clean_up(), "clean-up of the wasm environment")


def deterministic(session: Session, checks: Checks, twin: WasmTwin) -> ExampleBody:
    def body(data: st.DataObject) -> None:
        wire = session.requestor_wire()
        task_id, subtask_id = session.fresh_id("task"), session.fresh_id("subtask")
        spec = data.draw(session.tasks, label="task")
        if wire.create_task(task_id, spec.max_subtasks, spec.params_json).status is not Status.OK:
            reject()
        reply = wire.next_subtask(task_id, subtask_id)
        if reply.status is not Status.OK or not reply.value().HasField("subtask"):
            reject()
        subtask = reply.value().subtask
        runs = []
        for _ in range(2):
            root = session.root / session.fresh_id("determinism") / PROVIDER_TASK_DIR
            copy_resources(list(subtask.resources), session.requestor.work_dir / task_id, root)
            runs.append(twin.compute(checks, ProviderTaskDir(root), subtask_id, subtask.subtask_params_json))
        wire.abort_task(task_id)
        (first, first_fuel), (second, second_fuel) = runs
        checks.check(
            OWNER,
            first == second and first_fuel == second_fuel,
            f"subtask {subtask_id} ({subtask.subtask_params_json}) computed twice: "
            f"{len(first)} bytes / fuel {first_fuel} vs {len(second)} bytes / fuel {second_fuel}"
            + ("" if first == second else f"; bytes differ: {first[:80]!r} vs {second[:80]!r}"),
        )

    return body
