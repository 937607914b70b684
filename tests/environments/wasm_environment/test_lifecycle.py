"""The runtime lifecycle state machine on the wasm environment, and what a wasm runtime reports."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from environments.base import Runtime
from environments.status import RuntimeStatus
from environments.wasm import WasmEnvironment, WasmLimits, WasmRun
from tests.environments.lifecycle_machine import PayloadKind, RuntimeLifecycleMachine

from . import guests
from .support import GuestFactory, make_environment

_machine_env: dict[str, tuple[WasmEnvironment, dict[PayloadKind, WasmRun]]] = {}


@pytest.fixture(scope="module", autouse=True)
def machine_environment() -> Iterator[None]:
    """One environment and one module per payload kind for every example of the machine."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = make_environment(root / "cache")
        sources = {
            PayloadKind.ENDLESS: guests.ENDLESS,
            PayloadKind.FINITE: guests.HELLO,
            PayloadKind.FAILING: guests.UNREACHABLE,
            PayloadKind.BROKEN: guests.HELLO,
        }
        runs = {}
        for kind, source in sources.items():
            module = guests.write_guest(root, kind.value, source)
            sha256 = "0" * 64 if kind is PayloadKind.BROKEN else module.sha256
            runs[kind] = WasmRun(module=module.path, sha256=sha256, limits=WasmLimits(wall_time_s=300))
        _machine_env["env"] = (env, runs)
        yield
        asyncio.run(env.clean_up())


class WasmLifecycle(RuntimeLifecycleMachine):
    def new_runtime(self, kind: PayloadKind) -> Runtime:
        env, runs = _machine_env["env"]
        return env.runtime(runs[kind])


TestWasmLifecycle = WasmLifecycle.TestCase
TestWasmLifecycle.settings = settings(max_examples=40, stateful_step_count=10, deadline=None)


def test_a_finished_runtime_reports_its_result_and_usage(
    wasm_env: WasmEnvironment, guest: GuestFactory
) -> None:
    hello = guest("hello", guests.HELLO)

    async def scenario() -> None:
        runtime = wasm_env.runtime(WasmRun(module=hello.path, sha256=hello.sha256))
        assert runtime.usage().fuel is None
        await runtime.prepare()
        await runtime.start()
        assert await runtime.wait() is RuntimeStatus.STOPPED
        assert runtime.result is not None and runtime.result.stdout == b"hello\n"
        usage = runtime.usage()
        assert usage.fuel is not None and usage.fuel > 0
        assert usage.peak_memory_bytes == 65536 and usage.wall_ms > 0 and usage.cpu_ns > 0
        await runtime.clean_up()

    asyncio.run(scenario())


def test_a_trapping_runtime_fails_with_the_trap(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    endless = guest("endless", guests.ENDLESS)

    async def scenario() -> None:
        runtime = wasm_env.runtime(
            WasmRun(module=endless.path, sha256=endless.sha256, limits=WasmLimits(fuel=10_000))
        )
        await runtime.prepare()
        await runtime.start()
        assert await runtime.wait() is RuntimeStatus.FAILURE
        assert runtime.failure_reason is not None and "out of fuel" in runtime.failure_reason
        assert runtime.usage().fuel == 10_000

    asyncio.run(scenario())


def test_the_environment_config_gives_limits_to_payloads_without_any(
    wasm_env: WasmEnvironment, guest: GuestFactory
) -> None:
    endless = guest("endless", guests.ENDLESS)
    config = wasm_env.config.model_copy(update={"limits": WasmLimits(fuel=5_000)})
    runtime = wasm_env.runtime(WasmRun(module=endless.path, sha256=endless.sha256), config)
    assert runtime.run.limits == WasmLimits(fuel=5_000)
