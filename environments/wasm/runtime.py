"""One wasm run as a generic `Runtime`: prepare compiles, start submits, stop kills the worker.

A run that exits (any exit code) ends STOPPED; a trap, or a run that could not happen, ends FAILURE
with the reason. `result` holds what the run gave once it ended by itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from environments.base import Runtime, UsageCounters
from environments.wasm.errors import WasmError
from environments.wasm.pool import WasmJob
from environments.wasm.runs import WasmResult, WasmRun

if TYPE_CHECKING:
    from environments.wasm.environment import WasmEnvironment


class WasmRuntime(Runtime):
    """The lifecycle of one `WasmRun` in a `WasmEnvironment`."""

    def __init__(self, environment: WasmEnvironment, run: WasmRun) -> None:
        super().__init__(f"wasm runtime of {run.module.name}")
        self.environment = environment
        self.run = run
        self.result: WasmResult | None = None
        self._job: WasmJob[WasmResult] | None = None

    def usage(self) -> UsageCounters:
        return self.result.usage() if self.result is not None else UsageCounters()

    async def _prepare(self) -> None:
        nans = self.run.determinism.canonicalize_nans if self.run.determinism else False
        await self.environment.compile(self.run.module, self.run.sha256, nans)

    async def _start(self) -> Awaitable[str | None]:
        self._job = self.environment.submit(self.run)
        return self._complete(self._job)

    async def _complete(self, job: WasmJob[WasmResult]) -> str | None:
        self.result = await job.wait()
        return None if self.result.trap is None else self.result.describe_failure()

    async def _stop(self) -> None:
        if self._job is not None:
            self._job.cancel()
            with contextlib.suppress(WasmError):
                await self._job.wait()

    async def _clean_up(self) -> None:
        """Nothing to release: a run holds no files, and its worker is back in the pool."""
