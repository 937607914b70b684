"""The wasm environment: WASI command modules on wasmtime, sandboxed in worker processes.

    env = WasmEnvironment(WasmConfig(cache_dir=...))
    await env.prepare()
    result = await env.run(WasmRun(module=path, sha256=digest, argv=("app", "compute"), stdin=b"{}"))
    await env.clean_up()

`run` is what the app adapter uses; `runtime(payload)` wraps one run in the generic `Runtime` lifecycle;
`app_serving` serves a wasm build's app servers through the adapter, each a process whose module runs in an
environment of the same class (`python -m environments.wasm --env ENV MODULE`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path, PurePosixPath

from pydantic import Field

from environments.app_serving import AppPayload, CommandServing
from environments.base import (
    BenchmarkResult,
    Capabilities,
    EnvConfig,
    Environment,
    PayloadKind,
    Prerequisites,
    PrerequisitesRefused,
    Support,
    prerequisites_of,
)
from environments.wasm.cache import ensure_private_dir
from environments.wasm.errors import ModuleRejected
from environments.wasm.pool import WasmJob, WorkerPool
from environments.wasm.runs import (
    CompileLimits,
    CompileRequest,
    CompileResult,
    WasmLimits,
    WasmResult,
    WasmRun,
)
from environments.wasm.runtime import WasmRuntime

SUPPORTED_MACHINES = frozenset({"x86_64", "amd64", "aarch64", "arm64"})

BENCHMARK_ITERATIONS = 30_000_000
BENCHMARK_WAT = f"""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32) (local $x i64)
    (local.set $x (i64.const 88172645463325252))
    (loop $next
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const {BENCHMARK_ITERATIONS}))))
    (call $exit (i32.wrap_i64 (i64.and (local.get $x) (i64.const 0)))))
)
"""
"""The fixed benchmark kernel: xorshift64 iterations (integer work, no memory traffic)."""


def default_cache_dir() -> Path:
    """`$TASKAPI_WASM_CACHE`, else `$XDG_CACHE_HOME/taskapi/wasm`, else `~/.cache/taskapi/wasm`."""
    if "TASKAPI_WASM_CACHE" in os.environ:
        return Path(os.environ["TASKAPI_WASM_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "taskapi" / "wasm"


class WasmConfig(EnvConfig):
    """Settings of the wasm environment."""

    cache_dir: Path = Field(default_factory=default_cache_dir, description="private compile cache (0700)")
    module_dir: Path | None = Field(
        default=None, description="where install_prerequisites finds modules named by file name"
    )
    limits: WasmLimits = Field(default_factory=WasmLimits, description="limits of runs that set none")
    compile: CompileLimits = Field(
        default_factory=CompileLimits, description="module size, compile time and memory, cache size"
    )


class WasmPrerequisites(Prerequisites):
    """A wasm app needs one module: its file name and the sha256 of its bytes."""

    module: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class WasmEnvironment(Environment[WasmRun, WasmPrerequisites, WasmConfig]):
    """Runs WASI command modules in a pool of worker processes, one per core by default."""

    env_id = "wasm"
    declared_capabilities = Capabilities(deterministic=True, metered=True)
    payload_kind = PayloadKind.WASM_MODULE
    setup_hint = "install taskapi's dependencies (`pip install taskapi` brings wasmtime)"
    prerequisites_type = WasmPrerequisites

    def __init__(self, config: WasmConfig | None = None) -> None:
        super().__init__(config or WasmConfig())
        self._pool: WorkerPool | None = None

    @classmethod
    def support(cls) -> Support:
        machine = platform.machine().lower()
        if machine not in SUPPORTED_MACHINES:
            return Support(False, f"wasmtime has no compiler for this CPU ({machine})")
        try:
            version = metadata.version("wasmtime")
        except metadata.PackageNotFoundError:
            return Support(False, "the Python package wasmtime is not installed")
        return Support(True, f"wasmtime {version} on {machine}, {os.cpu_count()} cores")

    @property
    def pool(self) -> WorkerPool:
        self.require_enabled()
        assert self._pool is not None
        return self._pool

    async def _prepare(self) -> None:
        ensure_private_dir(self.config.cache_dir)
        size = self.config.max_parallel or os.cpu_count() or 1
        self._pool = WorkerPool(size, self.config.cache_dir, self.config.compile)

    async def _clean_up(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.close)

    def submit(self, run: WasmRun) -> WasmJob[WasmResult]:
        """Queue a run (the environment's default limits if it sets none); returns its job at once."""
        if run.limits is None:
            run = dataclasses.replace(run, limits=self.config.limits)
        return self.pool.submit_run(run)

    async def run(self, run: WasmRun) -> WasmResult:
        """Run a module to its end. Traps are in the result; `WasmError` when it could not run at all."""
        return await self.submit(run).wait()

    async def compile(self, module: Path, sha256: str, canonicalize_nans: bool = False) -> CompileResult:
        """Check and compile a module into the cache (`ModuleRejected` / `DigestMismatch` if it is bad)."""
        return await self.pool.submit_compile(CompileRequest(module, sha256, canonicalize_nans)).wait()

    async def install_prerequisites(self, prerequisites: WasmPrerequisites) -> None:
        """Find the module, check its sha256 and compile it, or raise `PrerequisitesRefused`."""
        path = Path(prerequisites.module)
        if not path.is_absolute():
            if self.config.module_dir is None:
                raise PrerequisitesRefused(
                    f"module {prerequisites.module!r} is a bare name but no module_dir is configured"
                )
            path = self.config.module_dir / path
        try:
            await self.compile(path, prerequisites.sha256)
        except ModuleRejected as exc:
            raise PrerequisitesRefused(str(exc)) from exc

    async def benchmark(self) -> BenchmarkResult:
        """Run the fixed integer kernel; score = million fuel units per wall-clock second."""
        import wasmtime  # only here: the parent process otherwise never needs wasmtime

        module_bytes = wasmtime.wat2wasm(BENCHMARK_WAT)
        digest = hashlib.sha256(module_bytes).hexdigest()
        module = self.config.cache_dir / f"benchmark-{digest}.wasm"
        if not module.is_file():
            module.write_bytes(module_bytes)
        result = await self.run(WasmRun(module=module, sha256=digest, limits=WasmLimits(wall_time_s=120)))
        if not result.ok:
            raise RuntimeError(f"the wasm benchmark failed: {result.describe_failure()}")
        return BenchmarkResult(score=result.fuel / result.wall_ms / 1000, usage=result.usage())

    def runtime(self, payload: WasmRun, config: WasmConfig | None = None) -> WasmRuntime:
        """A runtime for one run; `config` supplies the limits when the payload sets none."""
        if payload.limits is None:
            payload = dataclasses.replace(payload, limits=(config or self.config).limits)
        return WasmRuntime(self, payload)

    @classmethod
    def app_serving(cls, payload: AppPayload) -> CommandServing:
        """The build's servers: the wasm adapter, `python -m environments.wasm --env ENV MODULE`, a child
        process of the node running the module (beside the descriptor) in an environment of this class."""
        prerequisites = prerequisites_of(WasmPrerequisites, payload)
        relative = PurePosixPath(prerequisites.module)
        if not prerequisites.module or relative.is_absolute() or ".." in relative.parts:
            raise PrerequisitesRefused(
                "prerequisites module: must be a path inside the descriptor's folder, "
                f"got {prerequisites.module!r}"
            )
        module = payload.folder / prerequisites.module
        return CommandServing([sys.executable, "-m", "environments.wasm", "--env", cls.env_id, str(module)])
