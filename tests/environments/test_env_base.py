"""The base classes themselves: transition tables, the tracker, and the lifecycle on an in-memory runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from hypothesis import settings

from environments.base import (
    BenchmarkResult,
    EnvConfig,
    Environment,
    EnvironmentDisabled,
    Prerequisites,
    Runtime,
    Support,
    UsageCounters,
)
from environments.status import (
    ENV_TRANSITIONS,
    RUNTIME_TRANSITIONS,
    EnvStatus,
    InvalidTransition,
    RuntimeStatus,
    StatusTracker,
)
from tests.environments.lifecycle_machine import PayloadKind, RuntimeLifecycleMachine


class FakeRuntime(Runtime):
    """A payload that lives in the event loop: ends at once, fails, or runs until stopped."""

    def __init__(self, kind: PayloadKind) -> None:
        super().__init__("fake runtime")
        self.kind = kind
        self._stopped: asyncio.Event | None = None

    def usage(self) -> UsageCounters:
        return UsageCounters()

    async def _prepare(self) -> None:
        if self.kind is PayloadKind.BROKEN:
            raise ValueError("this payload cannot be prepared")

    async def _start(self) -> Awaitable[str | None]:
        self._stopped = asyncio.Event()
        return self._run(self._stopped)

    async def _run(self, stopped: asyncio.Event) -> str | None:
        if self.kind is PayloadKind.ENDLESS:
            await stopped.wait()
            raise RuntimeError("stopped")
        return "it failed" if self.kind is PayloadKind.FAILING else None

    async def _stop(self) -> None:
        assert self._stopped is not None
        self._stopped.set()

    async def _clean_up(self) -> None:
        pass


class FakeLifecycle(RuntimeLifecycleMachine):
    def new_runtime(self, kind: PayloadKind) -> Runtime:
        return FakeRuntime(kind)


TestFakeLifecycle = FakeLifecycle.TestCase
TestFakeLifecycle.settings = settings(max_examples=60, stateful_step_count=12, deadline=None)


class FakeEnvironment(Environment[None, Prerequisites, EnvConfig]):
    env_id = "fake"
    prerequisites_type = Prerequisites

    @classmethod
    def support(cls) -> Support:
        return Support(True, "always")

    async def _prepare(self) -> None:
        pass

    async def _clean_up(self) -> None:
        pass

    async def install_prerequisites(self, prerequisites: Prerequisites) -> None:
        self.require_enabled()

    async def benchmark(self) -> BenchmarkResult:
        return BenchmarkResult(1.0, UsageCounters())

    def runtime(self, payload: None, config: EnvConfig | None = None) -> Runtime:
        return FakeRuntime(PayloadKind.FINITE)


def test_every_status_has_a_row_and_only_torn_down_is_final() -> None:
    assert set(RUNTIME_TRANSITIONS) == set(RuntimeStatus)
    assert set(ENV_TRANSITIONS) == set(EnvStatus)
    assert [status for status, targets in RUNTIME_TRANSITIONS.items() if not targets] == [
        RuntimeStatus.TORN_DOWN
    ]


def test_invalid_transition_names_both_ends_and_the_allowed_ones() -> None:
    tracker = StatusTracker("runtime x", RuntimeStatus.CREATED, RUNTIME_TRANSITIONS)
    with pytest.raises(InvalidTransition) as refusal:
        tracker.set(RuntimeStatus.RUNNING)
    message = str(refusal.value)
    assert "runtime x cannot go from CREATED to RUNNING" in message
    assert "CLEANING_UP, PREPARING" in message
    assert (refusal.value.current, refusal.value.target) == (RuntimeStatus.CREATED, RuntimeStatus.RUNNING)
    assert tracker.status is RuntimeStatus.CREATED


def test_a_failing_listener_does_not_stop_the_change_or_other_listeners() -> None:
    tracker = StatusTracker("env", EnvStatus.DISABLED, ENV_TRANSITIONS)
    seen: list[tuple[EnvStatus, EnvStatus]] = []

    def broken(old: EnvStatus, new: EnvStatus) -> None:
        raise RuntimeError("listener bug")

    tracker.listen(broken)
    tracker.listen(lambda old, new: seen.append((old, new)))
    tracker.set(EnvStatus.PREPARING)
    assert tracker.status is EnvStatus.PREPARING
    assert seen == [(EnvStatus.DISABLED, EnvStatus.PREPARING)]


def test_environment_lifecycle_and_disabled_refusals() -> None:
    env = FakeEnvironment(EnvConfig())
    seen: list[tuple[EnvStatus, EnvStatus]] = []
    env.listen(lambda old, new: seen.append((old, new)))
    with pytest.raises(EnvironmentDisabled, match="environment fake is DISABLED"):
        asyncio.run(env.install_prerequisites(Prerequisites()))
    asyncio.run(env.prepare())
    with pytest.raises(InvalidTransition, match="cannot go from ENABLED to PREPARING"):
        asyncio.run(env.prepare())
    asyncio.run(env.install_prerequisites(Prerequisites()))
    asyncio.run(env.clean_up())
    assert seen == [
        (EnvStatus.DISABLED, EnvStatus.PREPARING),
        (EnvStatus.PREPARING, EnvStatus.ENABLED),
        (EnvStatus.ENABLED, EnvStatus.CLEANING_UP),
        (EnvStatus.CLEANING_UP, EnvStatus.DISABLED),
    ]
