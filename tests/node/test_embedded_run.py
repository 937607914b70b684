"""The embedded node (`taskapi run`'s requestor and in-process providers) drives whole tasks of a local app:
with either kind of provider server, giving up on a provider that cheats, refusing bad parameters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from grpclib.const import Status

from apps.tutorialapp import pow
from protos import node_pb2 as npb
from runtime.appmanager import AppManager
from runtime.node.compute import AppServerRunner
from runtime.node.embedded import run_embedded
from runtime.node.errors import NodeError
from runtime.node.requestor import RequestorConfig
from runtime.node.requestor_service import status_of
from runtime.node.runners import whitelist_of
from runtime.node.states import FAILURE_STATES
from runtime.node.store import SubtaskRow
from runtime.node.verification import VerificationConfig
from tests.sdk.helpers import app_script

T = TypeVar("T")
HANG_GUARD_S = 120.0
INPUT, DIFFICULTY = "lifecycle", 9
PARAMS = {"input": INPUT, "difficulty": DIFFICULTY, "subtasks": 4}
SHIPPED_DESCRIPTOR = Path(__file__).resolve().parents[2] / "apps" / "tutorialapp" / "descriptor.json"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD_S))


def local_build(tmp_path: Path, provider_server: str, command: list[str] | None = None) -> None:
    """Make tutorialapp's only enabled local build one with this `provider_server` (and app `command`)."""
    descriptor = json.loads(SHIPPED_DESCRIPTOR.read_text())
    descriptor["version"] = f"0.1.0+{provider_server}{'-scripted' if command else ''}"
    descriptor["provider_server"] = provider_server
    if command is not None:
        descriptor["prerequisites"]["command"] = command
    path = tmp_path / f"tutorialapp-{descriptor['version']}.json"
    path.write_text(json.dumps(descriptor))
    manager = AppManager()
    shipped = manager.resolve("tutorialapp", "local")
    added = manager.add(path, enable=True)
    if added.app_id != shipped.app_id:
        manager.disable(shipped.app_id)


def embedded(
    tmp_path: Path,
    params: dict[str, Any],
    *,
    providers: int = 1,
    config: RequestorConfig | None = None,
    reports: list[tuple[npb.TaskStatus, list[SubtaskRow]]] | None = None,
) -> npb.TaskStatus:
    """One task of tutorialapp's enabled local build on an embedded node with `providers` providers."""
    manager = AppManager()
    return run(
        run_embedded(
            "tutorialapp",
            "local",
            params,
            data_dir=tmp_path / "node",
            providers=providers,
            capacity=1,
            runners=lambda: [AppServerRunner()],
            whitelist=whitelist_of(app for app in manager.inventory().apps if app.enabled),
            max_subtasks=4,
            config=config,
            on_status=None if reports is None else lambda *report: reports.append(report),
        )
    )


def server_starts(root: Path) -> int:
    """How many provider servers served under `root` (each logs one 'listening' line)."""
    return sum(log.read_text().count("taskapi app listening on") for log in root.rglob(".provider-app.log"))


@pytest.mark.parametrize(("mode", "providers"), [("reusable", 2), ("per_call", 1), ("per_call", 2)])
def test_the_embedded_node_completes_a_task(tmp_path: Path, mode: str, providers: int) -> None:
    local_build(tmp_path, mode)
    reports: list[tuple[npb.TaskStatus, list[SubtaskRow]]] = []
    status = embedded(tmp_path, PARAMS, providers=providers, reports=reports)

    assert status.state == "finished", status.reason
    nonce = pow.search(INPUT, DIFFICULTY, 0, 2**20)
    assert nonce is not None
    assert list(status.outputs) == ["result.json"]
    result = json.loads((Path(status.outputs_dir) / "result.json").read_text())
    assert result == {"nonce": nonce, "hash": pow.digest(INPUT, nonce).hex()}
    assert status.env_id == "local"
    states = dict(status.subtasks_by_state)
    assert not set(states) & {str(state) for state in FAILURE_STATES}, states
    accepted = states.get("accepted", 0)
    assert accepted >= 1
    last_status, last_rows = reports[-1]
    assert last_status.state == "finished" and dict(last_status.subtasks_by_state) == states

    computed = sum(1 for row in last_rows if row.provider_id)
    starts = server_starts(tmp_path / "node")
    if mode == "per_call":
        assert accepted <= starts <= computed, "per_call: one fresh provider server per Compute"
    else:
        assert 1 <= starts <= providers, "reusable: one long-lived provider server per provider"


@pytest.mark.parametrize("mode", ["reusable", "per_call"])
def test_the_embedded_node_drops_a_provider_that_cheats(tmp_path: Path, mode: str) -> None:
    """Its result is rejected by Verify: the provider is dropped from the task at once, and with no other
    provider left the task fails (after `stranded_s`) instead of hanging."""
    command = app_script(
        tmp_path,
        """
        output = Path(subtask_id) / "result.json"
        claim = {"start": params["start"], "end": params["end"], "nonce": params["start"], "hash": "00" * 32}
        (task_dir.root / output).write_text(json.dumps(claim))
        return output
        """,
    )
    local_build(tmp_path, mode, command)
    config = RequestorConfig(stranded_s=1.0, verification=VerificationConfig(reexecute=False))
    reports: list[tuple[npb.TaskStatus, list[SubtaskRow]]] = []
    status = embedded(tmp_path, PARAMS, config=config, reports=reports)
    assert status.state == "failed"
    assert "dropped from it" in status.reason
    (cheater,) = status.trust
    assert cheater.dropped and cheater.rejected >= 1
    rejected = [row for row in reports[-1][1] if row.state == "rejected"]
    assert rejected and all("claimed hash does not match" in row.reason for row in rejected)


@pytest.mark.parametrize("mode", ["reusable", "per_call"])
def test_the_embedded_node_gives_up_after_max_failures(tmp_path: Path, mode: str) -> None:
    """Every Compute fails: the task fails with the last reason once failures pass max_failures."""
    command = app_script(tmp_path, 'raise RuntimeError("the provider broke down")')
    local_build(tmp_path, mode, command)
    config = RequestorConfig(max_failures=2, verification=VerificationConfig(reexecute=False))
    status = embedded(tmp_path, PARAMS, config=config)
    assert status.state == "failed"
    assert "too many failures (3)" in status.reason and "the provider broke down" in status.reason
    assert dict(status.subtasks_by_state).get("failed") == 3


@pytest.mark.parametrize(
    ("difficulty", "named"),
    [("high", "'difficulty'"), (41, "difficulty")],
    ids=["refused by the descriptor's parameter types", "refused by the app's CreateTask"],
)
def test_the_embedded_node_reports_bad_parameters(tmp_path: Path, difficulty: object, named: str) -> None:
    with pytest.raises(NodeError) as caught:
        embedded(tmp_path, {"input": "x", "difficulty": difficulty, "subtasks": 2})
    assert status_of(caught.value) is Status.INVALID_ARGUMENT
    assert named in str(caught.value)
