"""The worker pool: parallel runs, queueing, cancellation, and closing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from environments.base import EnvironmentDisabled
from environments.wasm import RunCancelled, TrapKind, WasmEnvironment, WasmLimits, WasmRun

from . import guests
from .support import GuestFactory, assert_healthy, make_environment

HANG_GUARD_S = 60.0


def wait_for(condition: Callable[[], object], what: str) -> None:
    """Poll `condition()` until true (a guard against hangs, not a timing assertion)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def test_runs_use_up_to_size_workers_in_parallel_and_queue_the_rest(
    guest: GuestFactory, tmp_path: Path
) -> None:
    endless = guest("endless", guests.ENDLESS)
    env = make_environment(tmp_path / "cache", max_parallel=2)
    try:
        run = WasmRun(module=endless.path, sha256=endless.sha256, limits=WasmLimits(wall_time_s=0.5))
        jobs = [env.submit(run) for _ in range(3)]
        wait_for(lambda: len(env.pool.worker_pids) == 2, "two workers")
        results = [job.result(HANG_GUARD_S) for job in jobs]
        assert all(r.trap is not None and r.trap.kind is TrapKind.DEADLINE for r in results)
        assert len(env.pool.worker_pids) == 2
    finally:
        asyncio.run(env.clean_up())


def test_cancelling_jobs_queued_or_running(
    fresh_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    endless, hello = guest("endless", guests.ENDLESS), guest("hello", guests.HELLO)
    running = fresh_env.submit(WasmRun(module=endless.path, sha256=endless.sha256))
    queued = fresh_env.submit(WasmRun(module=hello.path, sha256=hello.sha256))
    queued.cancel()
    with pytest.raises(RunCancelled, match="before it started"):
        asyncio.run(queued.wait())
    wait_for(lambda: fresh_env.pool.worker_pids, "the worker")
    running.cancel()
    with pytest.raises(RunCancelled, match="cancelled before it finished"):
        running.result(HANG_GUARD_S)
    assert_healthy(fresh_env, tmp_path)


def test_cancelling_the_awaiting_task_kills_the_run(fresh_env: WasmEnvironment, guest: GuestFactory) -> None:
    endless = guest("endless", guests.ENDLESS)

    async def scenario() -> None:
        task = asyncio.ensure_future(fresh_env.run(WasmRun(module=endless.path, sha256=endless.sha256)))
        while not fresh_env.pool.worker_pids:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    wait_for(lambda: not fresh_env.pool.worker_pids, "the worker to be killed")


def test_clean_up_cancels_running_runs_and_disables_the_environment(
    guest: GuestFactory, tmp_path: Path
) -> None:
    endless = guest("endless", guests.ENDLESS)
    env = make_environment(tmp_path / "cache", max_parallel=1)
    job = env.submit(WasmRun(module=endless.path, sha256=endless.sha256))
    wait_for(lambda: env.pool.worker_pids, "the worker")
    asyncio.run(env.clean_up())
    with pytest.raises(RunCancelled):
        job.result(HANG_GUARD_S)
    with pytest.raises(EnvironmentDisabled, match="environment wasm is DISABLED"):
        env.submit(WasmRun(module=endless.path, sha256=endless.sha256))
