"""What one conformance run shares across its properties: the app's servers, fresh ids, honest results.

The requestor under test serves `<root>/requestor`; a second requestor (`<root>/mirror`) replays tasks
for comparisons; the *honest provider* is the app's own ProviderApp (persistent) that computes the
results every Verify is checked against, cached per subtask. Each Compute it makes is also checked: the
call must succeed, name a file, and write only inside its subtask dir.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpclib.const import Status
from hypothesis import reject
from hypothesis import strategies as st

from environments.app_serving import AppLauncher
from runtime.conformance.calibration import (
    Calibration,
    TaskSpec,
    calibrate,
    roomy_spec_strategy,
    spec_strategy,
)
from runtime.conformance.params import off_schema_params, valid_params
from runtime.conformance.properties import Checks
from runtime.conformance.snapshot import Snapshot, changes, snapshot, under
from runtime.conformance.target import Target
from runtime.conformance.wire import (
    SUBTASK_INPUTS,
    AppServer,
    Hang,
    Loop,
    ProtocolMismatch,
    ProviderWire,
    RequestorWire,
    copy_resources,
    mismatch,
    output_file,
)

JsonDict = dict[str, Any]

PROVIDER_TASK_DIR = "conformance-task"
"""The provider task dir's name (a wasm provider takes it as the task id)."""

SERVER_LOGS = (".requestor-app.log", ".provider-app.log")
"""What `AppProcess` writes into a work dir itself (not the app)."""


@dataclass(frozen=True)
class SuiteConfig:
    """How much to test and the bounds of the bounded properties (generous: they find hangs, not slowness)."""

    examples: int = 200
    task_examples: int | None = None
    """Examples of each whole-task property (None: a tenth of `examples`, at least 5)."""
    seed: int = 0
    step_count: int = 12
    compute_budget_s: float = 60.0
    shutdown_bound_s: float = 20.0
    benchmark_bound_s: float = 60.0
    param_examples: tuple[JsonDict, ...] = ()
    pinned: tuple[tuple[str, Any], ...] = ()
    """Parameters with one value in every drawn task (`--set NAME=VALUE`)."""
    only: frozenset[str] | None = None


@dataclass(frozen=True)
class HonestResult:
    """A subtask's result as the app's own provider computed it: file name and bytes."""

    name: str
    content: bytes


def compute_changes(before: Snapshot, after: Snapshot, subtask_id: str) -> list[str]:
    """What a Compute of `subtask_id` changed outside `<subtask_id>/` (the SDK may create subtask_inputs/)."""
    return [
        change
        for change in changes(before, after)
        if not under(change.split(" ", 1)[1], subtask_id) and not _sdk_made(change, after)
    ]


def _sdk_made(change: str, after: Snapshot) -> bool:
    """The SDK creates the (empty) subtask_inputs/ folder itself before Compute."""
    path = change.removeprefix("created ")
    return change.startswith("created ") and path == SUBTASK_INPUTS and after[path][0] == "dir"


def skip_logs(path: str) -> bool:
    return path in SERVER_LOGS


class HonestProvider:
    """The app's ProviderApp computing honest results, cached by subtask id, parameters and resources."""

    def __init__(self, loop: Loop, launcher: AppLauncher, root: Path, budget_s: float) -> None:
        self.server = AppServer(loop, launcher, "provider", root / PROVIDER_TASK_DIR, persistent=True)
        self.wire = ProviderWire(self.server)
        self.budget_s = budget_s
        self._cache: dict[tuple[str, str, tuple[tuple[str, bytes], ...]], HonestResult] = {}

    def result(
        self,
        checks: Checks,
        requestor_task_dir: Path,
        subtask_id: str,
        params_json: str,
        resources: list[str],
    ) -> HonestResult:
        """The subtask's honest result; an example whose Compute exceeds the budget is dropped."""
        inputs = tuple(
            (name, (requestor_task_dir / SUBTASK_INPUTS / name).read_bytes())
            for name in resources
            if (requestor_task_dir / SUBTASK_INPUTS / name).is_file()
        )
        key = (subtask_id, params_json, inputs)
        if key not in self._cache:
            self._cache[key] = self._compute(checks, requestor_task_dir, subtask_id, params_json, resources)
        return self._cache[key]

    def _compute(
        self,
        checks: Checks,
        requestor_task_dir: Path,
        subtask_id: str,
        params_json: str,
        resources: list[str],
    ) -> HonestResult:
        if not self.server.running:
            self.server.start()
        root = self.server.work_dir
        if len(resources) != len(set(resources)) or not all(
            (requestor_task_dir / SUBTASK_INPUTS / name).is_file() for name in resources
        ):
            reject()  # subtask_resources_exist reports it where the subtask was handed out
        copy_resources(resources, requestor_task_dir, root)
        before = snapshot(root, skip=skip_logs)
        try:
            reply = self.wire.compute(PROVIDER_TASK_DIR, subtask_id, params_json, timeout=self.budget_s)
        except Hang:
            self.server.kill()
            reject()  # too expensive for an example: not a failure
        checks.exercised["provider_protocol"] += 1
        problem = mismatch(f"Compute of subtask {subtask_id} as NextSubtask gave it", reply, Status.OK)
        if problem is not None:
            checks.fail_and_drop(
                "provider_protocol", f"{problem}; provider log: {self.server.log_tail()[-500:]}"
            )
        try:
            output = output_file(root, reply.value().output_filepath)
        except ProtocolMismatch as exc:
            checks.fail_and_drop("provider_protocol", str(exc))
        result = HonestResult(output.name, output.read_bytes())
        outside = compute_changes(before, snapshot(root, skip=skip_logs), subtask_id)
        checks.check(
            "compute_writes_only_subtask_dir",
            not outside,
            f"Compute of subtask {subtask_id} wrote outside {subtask_id}/: {', '.join(outside[:8])}",
        )
        shutil.rmtree(root / subtask_id, ignore_errors=True)
        return result

    def close(self) -> None:
        self.server.close()


@dataclass
class Session:
    """The servers and helpers of one conformance run of `target` under `root`."""

    target: Target
    config: SuiteConfig
    loop: Loop
    root: Path
    launcher: AppLauncher = field(init=False)
    requestor: AppServer = field(init=False)
    mirror: AppServer = field(init=False)
    honest: HonestProvider = field(init=False)
    params: st.SearchStrategy[JsonDict] = field(init=False)
    bad_params: st.SearchStrategy[JsonDict] = field(init=False)
    calibration: Calibration = field(init=False, default=Calibration((), 0))
    _ids: itertools.count[int] = field(init=False, default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.launcher = self.loop.run(self.target.serving.open(), "preparing the app's environment")
        self.requestor = AppServer(self.loop, self.launcher, "requestor", self.root / "requestor")
        self.mirror = AppServer(self.loop, self.launcher, "requestor", self.root / "mirror")
        self.honest = HonestProvider(
            self.loop, self.launcher, self.root / "honest", self.config.compute_budget_s
        )
        pinned = dict(self.config.pinned)
        self.params = valid_params(self.target.parameters, self.config.param_examples, pinned)
        self.bad_params = off_schema_params(self.target.parameters, pinned)

    def calibrate(self) -> Calibration:
        """Find task specs the app accepts (see `runtime.conformance.calibration`)."""
        specs = st.one_of(spec_strategy(self.params), roomy_spec_strategy(self.params))
        self.calibration = calibrate(self.requestor_wire(), self.fresh_id, specs, self.config.seed)
        return self.calibration

    @property
    def tasks(self) -> st.SearchStrategy[TaskSpec]:
        """Task specs for properties that need a task that runs: accepted ones, once calibrated."""
        return self.calibration.strategy(spec_strategy(self.params))

    @property
    def wide_tasks(self) -> st.SearchStrategy[TaskSpec]:
        """Task specs with several subtasks at once (for arrival order, discards, mutations)."""
        return self.calibration.wide_strategy(spec_strategy(self.params))

    def fresh_id(self, kind: str) -> str:
        """An id never used before in this run."""
        return f"{kind}-{next(self._ids)}"

    def server(self, role: str, name: str, *, persistent: bool = True) -> AppServer:
        """A new server of the app on its own fresh work dir `<root>/<name>-N` (not started)."""
        work_dir = self.root / self.fresh_id(name)
        return AppServer(
            self.loop,
            self.launcher,
            "provider" if role == "provider" else "requestor",
            work_dir,
            persistent=persistent,
        )

    def requestor_wire(self) -> RequestorWire:
        if not self.requestor.running:
            self.requestor.start()
        return RequestorWire(self.requestor)

    def mirror_wire(self) -> RequestorWire:
        if not self.mirror.running:
            self.mirror.start()
        return RequestorWire(self.mirror)

    def close(self) -> None:
        for server in (self.requestor, self.mirror, self.honest.server):
            server.close()
        self.loop.run(self.target.serving.close(), "releasing the app's environment")
