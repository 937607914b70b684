"""The environment abstraction: an `Environment` runs payloads, each in a `Runtime` with a checked lifecycle.

An environment (wasm, docker, ...) is enabled with `prepare()` and disabled with `clean_up()`; it says
whether this machine supports it (`support()`), installs what an app needs (`install_prerequisites`),
measures the machine (`benchmark()`) and makes runtimes. A runtime goes

    CREATED -> prepare -> PREPARED -> start -> RUNNING -> (finishes | stop) -> STOPPED or FAILURE
            -> clean_up -> TORN_DOWN

along `environments.status.RUNTIME_TRANSITIONS`; a call that does not fit raises `InvalidTransition`.
Implementations fill in the `_prepare` / `_start` / `_stop` / `_clean_up` hooks; the base classes own the
statuses, so every environment behaves the same to the node.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from environments.app_serving import AppPayload, AppServing
from environments.status import (
    ENV_TRANSITIONS,
    RUNTIME_TRANSITIONS,
    EnvStatus,
    InvalidTransition,
    RuntimeStatus,
    StatusListener,
    StatusTracker,
)


@dataclass(frozen=True)
class Support:
    """Whether an environment can run on this machine, and why (shown by `taskapi envs list`)."""

    supported: bool
    reason: str


@dataclass(frozen=True)
class Capabilities:
    """What an environment's runs are like, declared by the environment so the node never tests its id."""

    deterministic: bool
    """A run gives the same bytes and usage for the same inputs: re-execution and replay can check it."""
    metered: bool
    """Usage is counted in fuel, a deterministic work meter (billed per fuel unit, not per CPU second)."""
    gpu: bool = False
    """Runs get the machine's GPUs."""
    network: bool = False
    """Runs may use a network (an internal one between the node and app servers, never the internet)."""
    serves_apps: bool = False
    """An app's requestor and provider servers run inside it."""
    sandboxed: bool = True
    """Runs are isolated from the host (false only for development environments: plain child processes)."""


class PayloadKind(StrEnum):
    """What an app build for an environment is, and so how the node ships, whitelists and serves it.

    Several environments may run the same kind (a further wasm environment runs the builds of wasm
    modules): the node handles each kind once and finds environments through the registry.
    """

    WASM_MODULE = "wasm_module"
    """A WASI module file, fetched by providers by its sha256 and served through the wasm adapter."""
    CONTAINER_IMAGE = "container_image"
    """A container image (repository, tag, digest once known) whose entrypoint serves the app."""
    PYTHON_PACKAGE = "python_package"
    """A Python package (or a command) served as a plain child process."""


@dataclass(frozen=True)
class UsageCounters:
    """What a run consumed. `fuel` is the deterministic work meter of environments that have one."""

    wall_ms: float = 0.0
    cpu_ns: int = 0
    peak_memory_bytes: int = 0
    fuel: int | None = None


@dataclass(frozen=True)
class BenchmarkResult:
    """A machine's speed in an environment: higher `score` is faster; `usage` of the benchmark run."""

    score: float
    usage: UsageCounters


class EnvConfig(BaseModel):
    """Settings every environment understands; implementations extend it with their own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_parallel: int | None = Field(default=None, ge=1, description="concurrent runs; default: all cores")


class Prerequisites(BaseModel):
    """What an app needs installed in an environment before its runtimes can start (per environment)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PrerequisitesRefused(Exception):
    """The environment will not install these prerequisites; the message says why."""


class EnvironmentDisabled(RuntimeError):
    """The environment is not enabled (call `prepare()` first, or it was cleaned up)."""


T = TypeVar("T")
PayloadT = TypeVar("PayloadT")
PrerequisitesT = TypeVar("PrerequisitesT", bound=Prerequisites)
ConfigT = TypeVar("ConfigT", bound=EnvConfig)


def prerequisites_of(model: type[PrerequisitesT], payload: AppPayload) -> PrerequisitesT:
    """An app payload's prerequisites as an environment's `model`, or `PrerequisitesRefused` naming each
    field that does not fit."""
    try:
        return model.model_validate(payload.prerequisites)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'prerequisites'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PrerequisitesRefused(f"prerequisites {problems}") from exc


class Runtime(abc.ABC):
    """One payload's life in an environment. Hooks are called only in the statuses that allow them."""

    def __init__(self, subject: str) -> None:
        self._tracker: StatusTracker[RuntimeStatus] = StatusTracker(
            subject, RuntimeStatus.CREATED, RUNTIME_TRANSITIONS
        )
        self._failure_reason: str | None = None
        self._stopping = False
        self._finished = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    def status(self) -> RuntimeStatus:
        return self._tracker.status

    @property
    def failure_reason(self) -> str | None:
        """Why the runtime is in FAILURE (None otherwise)."""
        return self._failure_reason

    def listen(self, listener: StatusListener[RuntimeStatus]) -> None:
        """Call `listener(old, new)` after every status change."""
        self._tracker.listen(listener)

    async def prepare(self) -> None:
        """CREATED -> PREPARED: get everything ready to start (e.g. compile). On error -> FAILURE, raises."""
        self._tracker.set(RuntimeStatus.PREPARING)
        await self._guard(self._prepare())
        self._tracker.set(RuntimeStatus.PREPARED)

    async def start(self) -> None:
        """PREPARED -> RUNNING: start the payload; it ends by itself (STOPPED / FAILURE) or by `stop()`."""
        self._tracker.set(RuntimeStatus.STARTING)
        completion = await self._guard(self._start())
        self._tracker.set(RuntimeStatus.RUNNING)
        self._watcher = asyncio.ensure_future(self._watch(completion))

    async def wait(self) -> RuntimeStatus:
        """Wait until the payload ended; return STOPPED or FAILURE. Only after `start()`."""
        if self.status() in (RuntimeStatus.STOPPED, RuntimeStatus.FAILURE):
            return self.status()
        if self.status() not in (RuntimeStatus.STARTING, RuntimeStatus.RUNNING):
            raise InvalidTransition(
                self._tracker.subject,
                self.status(),
                RuntimeStatus.STOPPED,
                RUNTIME_TRANSITIONS[self.status()],
            )
        await self._finished.wait()
        return self.status()

    async def stop(self) -> None:
        """RUNNING -> STOPPED: end the payload now."""
        self._tracker.check(RuntimeStatus.STOPPED)
        self._stopping = True
        await self._guard(self._stop())
        if self.status() is RuntimeStatus.RUNNING:
            self._tracker.set(RuntimeStatus.STOPPED)
        self._finished.set()

    async def clean_up(self) -> None:
        """CREATED / PREPARED / STOPPED / FAILURE -> TORN_DOWN: release everything the runtime holds."""
        self._tracker.set(RuntimeStatus.CLEANING_UP)
        await self._guard(self._clean_up())
        self._tracker.set(RuntimeStatus.TORN_DOWN)

    @abc.abstractmethod
    def usage(self) -> UsageCounters:
        """What the payload consumed so far (zeros before it ran)."""

    @abc.abstractmethod
    async def _prepare(self) -> None:
        """Hook of `prepare()`; raise to fail."""

    @abc.abstractmethod
    async def _start(self) -> Awaitable[str | None]:
        """Hook of `start()`: start the payload and return an awaitable of its end.

        The awaitable gives None when the payload ended normally, or the reason it failed.
        """

    @abc.abstractmethod
    async def _stop(self) -> None:
        """Hook of `stop()`: end the running payload (its completion awaitable may then raise)."""

    @abc.abstractmethod
    async def _clean_up(self) -> None:
        """Hook of `clean_up()`; raise to fail."""

    async def _guard(self, step: Awaitable[T]) -> T:
        try:
            return await step
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            raise

    def _fail(self, reason: str) -> None:
        self._failure_reason = reason
        self._tracker.set(RuntimeStatus.FAILURE)
        self._finished.set()

    async def _watch(self, completion: Awaitable[str | None]) -> None:
        try:
            failure = await completion
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
        if not self._stopping and self.status() is RuntimeStatus.RUNNING:
            if failure is None:
                self._tracker.set(RuntimeStatus.STOPPED)
            else:
                self._fail(failure)
        self._finished.set()


class Environment(abc.ABC, Generic[PayloadT, PrerequisitesT, ConfigT]):
    """A kind of sandbox payloads run in. Found by the registry through its `env_id`."""

    env_id: ClassVar[str]
    declared_capabilities: ClassVar[Capabilities]
    payload_kind: ClassVar[PayloadKind]
    """What the builds of apps this environment runs are (an app descriptor's prerequisites follow it)."""
    setup_hint: ClassVar[str] = ""
    """How to make a machine support this environment, shown when it cannot."""
    prerequisites_type: ClassVar[type[Prerequisites]]

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self._tracker: StatusTracker[EnvStatus] = StatusTracker(
            f"environment {self.env_id}", EnvStatus.DISABLED, ENV_TRANSITIONS
        )

    @classmethod
    @abc.abstractmethod
    def support(cls) -> Support:
        """Whether this machine can run the environment, with the reason (cheap; starts nothing)."""

    def status(self) -> EnvStatus:
        return self._tracker.status

    def listen(self, listener: StatusListener[EnvStatus]) -> None:
        """Call `listener(old, new)` after every status change."""
        self._tracker.listen(listener)

    async def prepare(self) -> None:
        """DISABLED / ERROR -> ENABLED: start what the environment needs. On error -> ERROR, raises."""
        self._tracker.set(EnvStatus.PREPARING)
        try:
            await self._prepare()
        except Exception:
            self._tracker.set(EnvStatus.ERROR)
            raise
        self._tracker.set(EnvStatus.ENABLED)

    async def clean_up(self) -> None:
        """ENABLED / ERROR -> DISABLED: stop everything the environment started."""
        self._tracker.set(EnvStatus.CLEANING_UP)
        try:
            await self._clean_up()
        except Exception:
            self._tracker.set(EnvStatus.ERROR)
            raise
        self._tracker.set(EnvStatus.DISABLED)

    def require_enabled(self) -> None:
        """Raise `EnvironmentDisabled` unless the environment is ENABLED."""
        if self.status() is not EnvStatus.ENABLED:
            raise EnvironmentDisabled(
                f"environment {self.env_id} is {self.status().name}; it must be ENABLED (call prepare())"
            )

    @abc.abstractmethod
    async def install_prerequisites(self, prerequisites: PrerequisitesT) -> None:
        """Make `prerequisites` ready to use, or raise `PrerequisitesRefused` saying why not."""

    @abc.abstractmethod
    async def benchmark(self) -> BenchmarkResult:
        """Run the environment's fixed benchmark and score this machine."""

    @abc.abstractmethod
    def runtime(self, payload: PayloadT, config: ConfigT | None = None) -> Runtime:
        """A new runtime (CREATED) for `payload`; `config` overrides the environment's config for it."""

    @classmethod
    def app_serving(cls, payload: AppPayload) -> AppServing:
        """How this environment serves an app build's requestor and provider servers
        (`environments.app_serving`); the build is checked now, before anything starts:
        `PrerequisitesRefused` says why this environment cannot serve it. By default it serves none."""
        raise PrerequisitesRefused(f"environment {cls.env_id} does not serve app servers")

    @abc.abstractmethod
    async def _prepare(self) -> None:
        """Hook of `prepare()`."""

    @abc.abstractmethod
    async def _clean_up(self) -> None:
        """Hook of `clean_up()`."""
