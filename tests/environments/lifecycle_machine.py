"""A Hypothesis state machine for the `Runtime` lifecycle, for every environment.

An environment plugs in by subclassing `RuntimeLifecycleMachine` and implementing `new_runtime(kind)`,
then exposing `TestX = XMachine.TestCase`. Each example creates one runtime for one payload kind and
calls prepare / start / stop / wait / clean_up in any order: a call the transition table allows must
succeed and land in the expected status, any other call must raise `InvalidTransition` and change
nothing; listeners must have seen exactly the valid transitions that happened.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from environments.base import Runtime
from environments.status import RUNTIME_TRANSITIONS, InvalidTransition, RuntimeStatus

T = TypeVar("T")

HANG_GUARD_S = 120.0
"""A guard against hangs, never a timing assertion."""


class PayloadKind(enum.Enum):
    """What the runtime's payload does once started."""

    ENDLESS = "endless"  # runs until stopped
    FINITE = "finite"  # ends by itself, normally
    FAILING = "failing"  # ends by itself, with a failure (a trap, a crash)
    BROKEN = "broken"  # cannot even be prepared (bad module, missing image)


class RuntimeLifecycleMachine(RuleBasedStateMachine):
    """Checks one runtime per example against RUNTIME_TRANSITIONS; subclasses supply the runtimes."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.runtime: Runtime | None = None
        self.kind = PayloadKind.FINITE
        self.expected = RuntimeStatus.CREATED
        self.seen: list[tuple[RuntimeStatus, RuntimeStatus]] = []

    def new_runtime(self, kind: PayloadKind) -> Runtime:
        """A CREATED runtime whose payload behaves as `kind` says."""
        raise NotImplementedError

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, HANG_GUARD_S))

    @property
    def rt(self) -> Runtime:
        assert self.runtime is not None
        return self.runtime

    def refused(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """The call must raise InvalidTransition naming the current status, and change nothing."""
        before = self.rt.status()
        with pytest.raises(InvalidTransition) as refusal:
            self.call(coroutine)
        assert refusal.value.current is before
        assert before.name in str(refusal.value)
        assert self.rt.status() is before

    @initialize(kind=st.sampled_from(PayloadKind))
    def create(self, kind: PayloadKind) -> None:
        self.kind = kind
        self.runtime = self.new_runtime(kind)
        self.runtime.listen(lambda old, new: self.seen.append((old, new)))

    def allows(self, method: str) -> bool:
        """Whether `method` is valid in the expected status (wait only where it would not block)."""
        allowed_from = {
            "prepare": {RuntimeStatus.CREATED},
            "start": {RuntimeStatus.PREPARED},
            "stop": {RuntimeStatus.RUNNING},
            "wait": {RuntimeStatus.STOPPED, RuntimeStatus.FAILURE},
            "clean_up": {
                s for s, targets in RUNTIME_TRANSITIONS.items() if RuntimeStatus.CLEANING_UP in targets
            },
        }
        return self.expected in allowed_from[method]

    @rule(method=st.sampled_from(["prepare", "start", "stop", "wait", "clean_up"]))
    def call_method(self, method: str) -> None:
        """Call `method`: where the status allows it, it must work; elsewhere it must be refused."""
        if not self.allows(method):
            if not (method == "wait" and self.expected is RuntimeStatus.RUNNING):  # that would block
                self.refused(getattr(self.rt, method)())
            return
        getattr(self, f"valid_{method}")()

    def valid_prepare(self) -> None:
        if self.kind is PayloadKind.BROKEN:
            with pytest.raises(Exception):  # noqa: B017 - each environment fails in its own words
                self.call(self.rt.prepare())
            self.expected = RuntimeStatus.FAILURE
            assert self.rt.failure_reason
        else:
            self.call(self.rt.prepare())
            self.expected = RuntimeStatus.PREPARED

    def valid_start(self) -> None:
        self.call(self.rt.start())
        if self.kind is PayloadKind.ENDLESS:
            self.expected = RuntimeStatus.RUNNING
            return
        final = self.call(self.rt.wait())
        self.expected = RuntimeStatus.STOPPED if self.kind is PayloadKind.FINITE else RuntimeStatus.FAILURE
        assert final is self.expected
        assert (self.rt.failure_reason is None) == (self.kind is PayloadKind.FINITE)

    def valid_stop(self) -> None:
        self.call(self.rt.stop())
        self.expected = RuntimeStatus.STOPPED
        assert self.call(self.rt.wait()) is RuntimeStatus.STOPPED

    def valid_wait(self) -> None:
        assert self.call(self.rt.wait()) is self.expected

    def valid_clean_up(self) -> None:
        self.call(self.rt.clean_up())
        self.expected = RuntimeStatus.TORN_DOWN

    @invariant()
    def status_is_as_expected(self) -> None:
        if self.runtime is not None:
            assert self.runtime.status() is self.expected

    @invariant()
    def listeners_saw_a_valid_path(self) -> None:
        current = RuntimeStatus.CREATED
        for old, new in self.seen:
            assert old is current and new in RUNTIME_TRANSITIONS[old], self.seen
            current = new
        assert current is self.expected

    def teardown(self) -> None:
        if self.runtime is not None and self.runtime.status() is RuntimeStatus.RUNNING:
            self.call(self.runtime.stop())
        self.loop.close()
