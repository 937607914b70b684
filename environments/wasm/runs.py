"""What to run in the wasm environment and what a run gave: plain, picklable values (no wasmtime here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from environments.base import UsageCounters

MIB = 1 << 20


@dataclass(frozen=True)
class Preopen:
    """A host directory the guest sees at `guest` (WASI preopen); read-only unless `writable`."""

    host: Path
    guest: str
    writable: bool = False


DEFAULT_WALL_TIME_S = 600.0
"""A run's wall-clock deadline when nothing sets one (a task's compute gets the task's own)."""

DEFAULT_FUEL = 20_000_000_000_000
"""A run's fuel budget when nothing sets one: about 10 CPU-minutes at 3e10 fuel per second."""


@dataclass(frozen=True)
class WasmLimits:
    """Per-run limits; every one holds, and each names itself when it is hit.

    `memory_bytes` bounds all linear memories together (each of at most `memories` gets an equal share),
    `table_elements` all tables together (at most `tables`). `output_bytes` and `output_files` bound what
    the writable preopens hold (their files' sizes together, and how many entries): a file written past
    `output_bytes` fails with EFBIG, and a run found over either bound is interrupted. `stdout_bytes` and
    `stderr_bytes` cap the captured streams.
    """

    wall_time_s: float = DEFAULT_WALL_TIME_S
    fuel: int = DEFAULT_FUEL
    memory_bytes: int = 1024 * MIB
    memories: int = 1
    table_elements: int = 1 << 20
    tables: int = 4
    output_bytes: int = 1024 * MIB
    output_files: int = 10_000
    stdout_bytes: int = 1 * MIB
    stderr_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        if self.wall_time_s <= 0:
            raise ValueError(f"wall_time_s must be > 0, got {self.wall_time_s}")
        for name in ("fuel", "memories", "tables"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        nonnegative = ("memory_bytes", "table_elements", "output_bytes", "output_files", "stdout_bytes")
        for name in (*nonnegative, "stderr_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def memory_bytes_each(self) -> int:
        """The most one linear memory may hold (an equal share of `memory_bytes`)."""
        return self.memory_bytes // self.memories

    @property
    def table_elements_each(self) -> int:
        """The most elements one table may hold (an equal share of `table_elements`)."""
        return self.table_elements // self.tables


@dataclass(frozen=True)
class CompileLimits:
    """Bounds on turning a module into machine code, and on the compile cache that keeps the results.

    A module is compiled in a process of its own whose address space is at most `memory_bytes` and which
    is stopped after `time_s`; modules over `module_bytes` are refused unread. The cache keeps at most
    `cache_bytes` of artifacts, evicting the least recently used.
    """

    module_bytes: int = 64 * MIB
    time_s: float = 60.0
    memory_bytes: int = 1024 * MIB
    cache_bytes: int = 1024 * MIB

    def __post_init__(self) -> None:
        if self.time_s <= 0:
            raise ValueError(f"time_s must be > 0, got {self.time_s}")
        for name in ("module_bytes", "memory_bytes", "cache_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Determinism:
    """The deterministic profile: clocks and randomness virtualised and seeded by `seed`.

    Two runs of the same module with the same input, preopened files and seed give the same output
    bytes and consume the same fuel. `canonicalize_nans` also makes float NaN bit patterns portable
    (free on integer code, slower on float-heavy code).
    """

    seed: str
    canonicalize_nans: bool = False


@dataclass(frozen=True)
class WasmRun:
    """One invocation of a WASI command module (`_start`).

    `sha256` is the identity of the code to run: the worker runs only code whose bytes hashed to it,
    compiling `module` (checking its digest) when its cache has no artifact for it yet. Nothing of the
    host is visible to the guest but `preopens`, `argv`, `env` and `stdin`. `limits` None: the
    environment's default limits.
    """

    module: Path
    sha256: str
    argv: tuple[str, ...] = ("app",)
    env: tuple[tuple[str, str], ...] = ()
    stdin: bytes = b""
    preopens: tuple[Preopen, ...] = ()
    limits: WasmLimits | None = None
    determinism: Determinism | None = None


@dataclass(frozen=True)
class CompileRequest:
    """Compile `module` into the cache (after checking its digest) without running it."""

    module: Path
    sha256: str
    canonicalize_nans: bool = False


@dataclass(frozen=True)
class CompileResult:
    """Whether the artifact was already cached, and how long getting it took."""

    cached: bool
    load_ms: float


class TrapKind(enum.Enum):
    """Why a run ended abnormally."""

    OUT_OF_FUEL = "out_of_fuel"
    DEADLINE = "deadline"
    MEMORY_LIMIT = "memory_limit"
    STACK_OVERFLOW = "stack_overflow"
    OUTPUT_LIMIT = "output_limit"
    TABLE_LIMIT = "table_limit"
    HOST_CALL_LIMIT = "host_call_limit"
    TRAP = "trap"
    HOST_ERROR = "host_error"


@dataclass(frozen=True)
class Trap:
    """An abnormal end of a run, with a message meant for people."""

    kind: TrapKind
    message: str


@dataclass(frozen=True)
class WasmResult:
    """What one run gave. `exit_code` is None when the run trapped before exiting."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    fuel: int
    wall_ms: float
    trap: Trap | None = None
    cpu_ns: int = 0
    peak_memory_bytes: int = 0

    @property
    def ok(self) -> bool:
        """True when the module exited with code 0 and nothing trapped."""
        return self.trap is None and self.exit_code == 0

    def usage(self) -> UsageCounters:
        return UsageCounters(
            wall_ms=self.wall_ms, cpu_ns=self.cpu_ns, peak_memory_bytes=self.peak_memory_bytes, fuel=self.fuel
        )

    def describe_failure(self, stderr_tail: int = 2000) -> str:
        """One message for a failed run: the trap or exit code, then the tail of stderr."""
        exited = f"the module exited with code {self.exit_code}"
        what = self.trap.message if self.trap is not None else exited
        tail = self.stderr[-stderr_tail:].decode("utf-8", errors="replace").strip()
        return f"{what}; stderr: {tail}" if tail else f"{what}; stderr was empty"
