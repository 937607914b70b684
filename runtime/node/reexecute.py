"""Deterministic re-execution of a wasm subtask on the requestor, exactly as a provider computes it.

The wasm adapter seeds a compute with `<task_id>/<subtask_id>` and the provider's task dir is named after
the task, so a run in a fresh `<tmp>/<task_id>/` with the same subtask id, parameters, module and input
files gives the same output bytes and the same fuel as any honest provider's run.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from apps.sdk.sandboxed_files import UnsafePath, open_file
from apps.sdk.workdir import ProviderTaskDir, check_id
from environments.base import PayloadKind
from environments.registry import UnknownEnvironment, capabilities, environment_class, payload_kind
from environments.wasm.environment import WasmEnvironment
from protos import node_pb2 as npb
from runtime.node.compute import WasmRunner
from runtime.node.journal import Entry
from runtime.node.resources import CHUNK_BYTES, HashedFile, VerifiedFiles


class Unverifiable(Exception):
    """The subtask cannot be re-run faithfully here (module or input missing or changed); nobody is blamed."""


@dataclass(frozen=True)
class Rerun:
    """What a re-execution produced; `output` lives until the `run` context ends."""

    output: Path
    sha256: str
    fuel: int
    wall_ms: int


class Reexecutor:
    """Re-runs wasm subtasks from journal entries, each in its own instance of the environment it ran in
    (found through the registry, started on first use)."""

    def __init__(self, scratch: Path | None = None) -> None:
        self._scratch = scratch
        self._runners: dict[str, WasmRunner] = {}
        self._modules = VerifiedFiles()  # hashed once, not on every re-execution

    def _wasm(self, env_id: str) -> WasmRunner:
        if env_id not in self._runners:
            environment = environment_class(env_id)(None)
            if not isinstance(environment, WasmEnvironment):
                raise Unverifiable(f"{env_id} is no wasm environment this node can re-run its results in")
            self._runners[env_id] = WasmRunner(environment)
        return self._runners[env_id]

    @asynccontextmanager
    async def run(self, entry: Entry) -> AsyncIterator[Rerun]:
        """Re-run `entry`'s subtask in a fresh task dir; yields the result, then removes the dir.

        Raises `Unverifiable` when the module or an input is missing or no longer has its recorded digest.
        Errors of the run itself (a trap, a bad reply) propagate.
        """
        module = _checked_module(entry, self._modules)
        if self._scratch is not None:
            self._scratch.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="reexec-", dir=self._scratch))
        try:
            task_dir = ProviderTaskDir(scratch / check_id("task id", entry.task_id))
            task_dir.prepare()
            await asyncio.to_thread(stage_inputs, entry, task_dir.subtask_inputs)
            assignment = npb.Assignment(
                task_id=entry.task_id,
                subtask_id=entry.subtask_id,
                app_id=entry.app_id,
                app_name=entry.app_name,
                env_id=entry.env_id,
                subtask_params_json=entry.params_json,
                app_module=npb.Resource(name=module.name, sha256=entry.module_sha256),
            )
            outcome = await self._wasm(entry.env_id).compute(assignment, task_dir, module)
            output = await HashedFile.open_off_loop_if_big(task_dir.root, outcome.output)
            output.close()
            yield Rerun(outcome.output, output.sha256, int(outcome.usage.fuel), int(outcome.usage.wall_ms))
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def close(self) -> None:
        runners, self._runners = self._runners, {}
        for runner in runners.values():
            await runner.close()


def _checked_module(entry: Entry, modules: VerifiedFiles) -> Path:
    """The subtask's module, checked; `Unverifiable` unless it ran as a wasm module in a deterministic
    environment installed here."""
    module = Path(entry.module_path)
    try:
        deterministic = capabilities(entry.env_id).deterministic
        wasm = payload_kind(entry.env_id) is PayloadKind.WASM_MODULE
    except UnknownEnvironment as exc:
        raise Unverifiable(f"subtask {entry.subtask_id} ran in {entry.env_id}: {exc}") from exc
    if not (deterministic and wasm) or not entry.module_sha256:
        raise Unverifiable(
            f"subtask {entry.subtask_id} ran in {entry.env_id}, which is no deterministic wasm environment"
        )
    if not modules.holds(module, entry.module_sha256):
        raise Unverifiable(f"module {module} is missing or no longer has sha256 {entry.module_sha256}")
    return module


def stage_inputs(entry: Entry, target: Path) -> None:
    """Copy the subtask's inputs into `target`, each checked against its recorded digest.

    The inputs lie in the task's subtask_inputs, which the app's guest may write: each is opened without
    following links (a link there is Unverifiable, never read), and the bytes copied are the bytes hashed.
    """
    source_dir = Path(entry.inputs_dir)
    for item in entry.inputs:
        name = check_id("resource name", item.name)
        try:
            with open_file(source_dir, name) as source:
                if hashlib.file_digest(source, "sha256").hexdigest() != item.sha256:
                    raise Unverifiable(f"input {name} no longer has sha256 {item.sha256}")
                source.seek(0)
                with open(target / name, "wb") as destination:
                    shutil.copyfileobj(source, destination)
        except (FileNotFoundError, UnsafePath) as exc:
            raise Unverifiable(f"input {name} cannot be staged: {exc}") from exc


def first_difference(claimed: Path, replayed: Path) -> int | None:
    """Byte offset of the first difference between two files (the shorter's length if one is a prefix)."""
    offset = 0
    with open(claimed, "rb") as left, open(replayed, "rb") as right:
        while True:
            a, b = left.read(CHUNK_BYTES), right.read(CHUNK_BYTES)
            if a == b:
                if not a:
                    return None
                offset += len(a)
                continue
            for index, (x, y) in enumerate(zip(a, b, strict=False)):
                if x != y:
                    return offset + index
            return offset + min(len(a), len(b))
