"""The local lifecycle helper drives a whole task over real gRPC, with either kind of provider server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.lifecycle import LifecycleError, LocalLifecycle, TaskProgress
from apps.sdk.process import python_app_command
from apps.tutorialapp import pow

from .helpers import app_script

T = TypeVar("T")
HANG_GUARD_S = 120.0
INPUT, DIFFICULTY = "lifecycle", 9


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD_S))


def server_starts(provider_root: Path) -> int:
    """How many provider servers served under `provider_root` (each logs one 'listening' line)."""
    return sum(
        log.read_text().count("taskapi app listening on") for log in provider_root.rglob(".provider-app.log")
    )


@pytest.mark.parametrize(("mode", "providers"), [("persistent", 2), ("per_call", 1), ("per_call", 2)])
def test_the_lifecycle_completes_a_task(tmp_path: Path, mode: str, providers: int) -> None:
    reports: list[TaskProgress] = []
    lifecycle = LocalLifecycle(
        python_app_command("apps.tutorialapp"),
        tmp_path,
        providers=providers,
        provider_mode=mode,
        on_progress=lambda progress: reports.append(TaskProgress(**vars(progress))),
    )
    params = {"input": INPUT, "difficulty": DIFFICULTY, "subtasks": 4}
    outcome = run(lifecycle.run("pow", params, max_subtasks=4))

    nonce = pow.search(INPUT, DIFFICULTY, 0, 2**20)
    assert nonce is not None
    assert outcome.outputs == [outcome.outputs_dir / "result.json"]
    result = json.loads(outcome.outputs[0].read_text())
    assert result == {"nonce": nonce, "hash": pow.digest(INPUT, nonce).hex()}
    assert outcome.env_id == "docker_cpu"
    assert outcome.progress.failed == 0 and outcome.progress.in_flight == 0
    assert reports and reports[-1].verified == outcome.progress.verified >= 1

    computed = outcome.progress.verified
    starts = server_starts(tmp_path / "providers")
    if mode == "per_call":
        assert starts == computed, "per_call: one fresh provider server per Compute"
    else:
        assert starts <= providers, "persistent: one long-lived provider server per slot"


@pytest.mark.parametrize("mode", ["persistent", "per_call"])
def test_the_lifecycle_gives_up_on_a_provider_that_cheats(tmp_path: Path, mode: str) -> None:
    """Every result is rejected by Verify: the task fails with the reason after max_failures, no hang."""
    command = app_script(
        tmp_path,
        """
        output = Path(subtask_id) / "result.json"
        claim = {"start": params["start"], "end": params["end"], "nonce": params["start"], "hash": "00" * 32}
        (task_dir.root / output).write_text(json.dumps(claim))
        return output
        """,
    )
    lifecycle = LocalLifecycle(command, tmp_path / "work", provider_mode=mode, max_failures=2)
    params = {"input": INPUT, "difficulty": DIFFICULTY, "subtasks": 4}
    with pytest.raises(LifecycleError, match="rejected by Verify: claimed hash does not match"):
        run(lifecycle.run("pow", params, max_subtasks=4))


def test_the_lifecycle_reports_bad_parameters(tmp_path: Path) -> None:
    lifecycle = LocalLifecycle(python_app_command("apps.tutorialapp"), tmp_path)
    with pytest.raises(GRPCError) as caught:
        run(lifecycle.run("pow", {"input": "x", "difficulty": "high", "subtasks": 2}, max_subtasks=2))
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert "'difficulty'" in (caught.value.message or "")
