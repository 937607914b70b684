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


@dataclass(frozen=True)
class WasmLimits:
    """Per-run limits. `fuel` None: no work budget, only the wall-clock deadline bounds the run."""

    wall_time_s: float = 3600.0
    fuel: int | None = None
    memory_bytes: int = 1024 * MIB
    stdout_bytes: int = 1 * MIB
    stderr_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        if self.wall_time_s <= 0:
            raise ValueError(f"wall_time_s must be > 0, got {self.wall_time_s}")
        if self.fuel is not None and self.fuel < 1:
            raise ValueError(f"fuel must be >= 1 or None, got {self.fuel}")
        for name in ("memory_bytes", "stdout_bytes", "stderr_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


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
