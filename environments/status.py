"""Statuses of environments and runtimes, their allowed transitions, and a tracker that enforces them.

Every status change goes through `StatusTracker.set`, which refuses a transition the table does not
allow with `InvalidTransition` and tells the listeners about every change it makes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

log = logging.getLogger(__name__)


class EnvStatus(enum.Enum):
    """Where an environment is in its life: disabled until `prepare`, enabled until `clean_up`."""

    DISABLED = "disabled"
    PREPARING = "preparing"
    ENABLED = "enabled"
    CLEANING_UP = "cleaning_up"
    ERROR = "error"


class RuntimeStatus(enum.Enum):
    """Where one runtime (one payload in an environment) is in its life."""

    CREATED = "created"
    PREPARING = "preparing"
    PREPARED = "prepared"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILURE = "failure"
    CLEANING_UP = "cleaning_up"
    TORN_DOWN = "torn_down"


ENV_TRANSITIONS: Mapping[EnvStatus, frozenset[EnvStatus]] = {
    EnvStatus.DISABLED: frozenset({EnvStatus.PREPARING}),
    EnvStatus.PREPARING: frozenset({EnvStatus.ENABLED, EnvStatus.ERROR}),
    EnvStatus.ENABLED: frozenset({EnvStatus.CLEANING_UP}),
    EnvStatus.CLEANING_UP: frozenset({EnvStatus.DISABLED, EnvStatus.ERROR}),
    EnvStatus.ERROR: frozenset({EnvStatus.PREPARING, EnvStatus.CLEANING_UP}),
}
"""Allowed environment transitions: from status -> the statuses it may go to."""

RUNTIME_TRANSITIONS: Mapping[RuntimeStatus, frozenset[RuntimeStatus]] = {
    RuntimeStatus.CREATED: frozenset({RuntimeStatus.PREPARING, RuntimeStatus.CLEANING_UP}),
    RuntimeStatus.PREPARING: frozenset({RuntimeStatus.PREPARED, RuntimeStatus.FAILURE}),
    RuntimeStatus.PREPARED: frozenset({RuntimeStatus.STARTING, RuntimeStatus.CLEANING_UP}),
    RuntimeStatus.STARTING: frozenset({RuntimeStatus.RUNNING, RuntimeStatus.FAILURE}),
    RuntimeStatus.RUNNING: frozenset({RuntimeStatus.STOPPED, RuntimeStatus.FAILURE}),
    RuntimeStatus.STOPPED: frozenset({RuntimeStatus.CLEANING_UP}),
    RuntimeStatus.FAILURE: frozenset({RuntimeStatus.CLEANING_UP}),
    RuntimeStatus.CLEANING_UP: frozenset({RuntimeStatus.TORN_DOWN, RuntimeStatus.FAILURE}),
    RuntimeStatus.TORN_DOWN: frozenset(),
}
"""Allowed runtime transitions: from status -> the statuses it may go to. TORN_DOWN is final."""

S = TypeVar("S", bound=enum.Enum)

StatusListener = Callable[[S, S], None]
"""Called as `listener(old, new)` after every status change."""


class InvalidTransition(RuntimeError):
    """A call that would move an environment or runtime along a transition its table does not allow."""

    def __init__(
        self, subject: str, current: enum.Enum, target: enum.Enum, allowed: frozenset[enum.Enum]
    ) -> None:
        allowed_names = ", ".join(sorted(status.name for status in allowed)) or "nothing (final status)"
        super().__init__(
            f"{subject} cannot go from {current.name} to {target.name}; from {current.name} it may go to "
            f"{allowed_names}"
        )
        self.current = current
        self.target = target


class StatusTracker(Generic[S]):
    """Holds one status, changes it only along `transitions`, and notifies listeners of each change."""

    def __init__(self, subject: str, initial: S, transitions: Mapping[S, frozenset[S]]) -> None:
        self.subject = subject
        self._status: S = initial
        self._transitions: Mapping[S, frozenset[S]] = transitions
        self._listeners: list[StatusListener[S]] = []

    @property
    def status(self) -> S:
        return self._status

    def check(self, target: S) -> None:
        """Raise `InvalidTransition` unless the current status may go to `target`."""
        allowed = self._transitions[self._status]
        if target not in allowed:
            raise InvalidTransition(self.subject, self._status, target, allowed)

    def set(self, target: S) -> None:
        """Move to `target` (checked) and notify the listeners; a failing listener is logged, not raised."""
        self.check(target)
        old, self._status = self._status, target
        for listener in list(self._listeners):
            try:
                listener(old, target)
            except Exception:
                log.exception("status listener of %s failed on %s -> %s", self.subject, old.name, target.name)

    def listen(self, listener: StatusListener[S]) -> None:
        """Call `listener(old, new)` after every future status change."""
        self._listeners.append(listener)
