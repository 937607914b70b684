"""The local environment: commands as plain child processes through the generic Runtime lifecycle."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from environments.base import PrerequisitesRefused
from environments.local import LocalEnvironment, LocalPrerequisites, LocalRun
from environments.registry import get_environment
from environments.status import RuntimeStatus


def test_local_is_installed_through_the_entry_point_and_supported() -> None:
    assert get_environment("local") is LocalEnvironment
    assert "no sandbox" in LocalEnvironment.support().reason


def test_a_command_runs_in_its_work_dir_and_ends_stopped(tmp_path: Path) -> None:
    async def scenario() -> tuple[RuntimeStatus, float]:
        script = "import pathlib; pathlib.Path('out.txt').write_text('done')"
        runtime = LocalEnvironment().runtime(LocalRun([sys.executable, "-c", script], tmp_path / "work"))
        await runtime.prepare()
        await runtime.start()
        status = await runtime.wait()
        await runtime.clean_up()
        return status, runtime.usage().wall_ms

    status, wall_ms = asyncio.run(scenario())
    assert status is RuntimeStatus.STOPPED and wall_ms > 0
    assert (tmp_path / "work" / "out.txt").read_text() == "done"


def test_a_failing_command_ends_in_failure_with_its_exit_code(tmp_path: Path) -> None:
    async def scenario() -> tuple[RuntimeStatus, str | None]:
        runtime = LocalEnvironment().runtime(
            LocalRun([sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
        )
        await runtime.prepare()
        await runtime.start()
        return await runtime.wait(), runtime.failure_reason

    status, reason = asyncio.run(scenario())
    assert status is RuntimeStatus.FAILURE and reason is not None and "exited with code 3" in reason


def test_stop_ends_a_running_command_at_once(tmp_path: Path) -> None:
    async def scenario() -> tuple[RuntimeStatus, float]:
        runtime = LocalEnvironment().runtime(
            LocalRun([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
        )
        await runtime.prepare()
        await runtime.start()
        await runtime.stop()
        status = await asyncio.wait_for(runtime.wait(), 5)
        return status, runtime.usage().wall_ms

    status, wall_ms = asyncio.run(scenario())
    assert status is RuntimeStatus.STOPPED and wall_ms < 5000  # killed, not slept out


def test_the_benchmark_times_a_child_process() -> None:
    result = asyncio.run(LocalEnvironment().benchmark())
    assert result.score > 0 and result.usage.wall_ms > 0


@pytest.mark.parametrize("module", ["no_such_package_here", "apps.no_such_app", ".relative"])
def test_a_package_the_interpreter_cannot_import_is_refused(module: str) -> None:
    with pytest.raises(PrerequisitesRefused, match="is not importable here"):
        asyncio.run(LocalEnvironment().install_prerequisites(LocalPrerequisites(module=module)))


def test_an_importable_package_is_accepted() -> None:
    asyncio.run(LocalEnvironment().install_prerequisites(LocalPrerequisites(module="apps.tutorialapp")))


def test_an_app_server_needs_the_environment_enabled(tmp_path: Path) -> None:
    environment = LocalEnvironment()
    with pytest.raises(RuntimeError, match="must be ENABLED"):
        environment.app_server([sys.executable, "-m", "apps.tutorialapp"], "requestor", tmp_path)
