"""The deterministic profile: same module, input and seed => same output bytes and same fuel."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from environments.wasm import Determinism, WasmEnvironment, WasmResult, WasmRun
from environments.wasm.deterministic import CLOCK_STEP_NS, REALTIME_BASE_NS

from . import guests
from .support import GuestFactory, make_environment


def run_fresh(cache_dir: Path, run: WasmRun) -> WasmResult:
    """Run once in a brand-new environment (own worker, own compile cache)."""
    env = make_environment(cache_dir, max_parallel=1)
    try:
        return asyncio.run(env.run(run))
    finally:
        asyncio.run(env.clean_up())


def test_two_fresh_runtimes_give_identical_bytes_and_fuel(guest: GuestFactory, tmp_path: Path) -> None:
    module = guest("entropy", guests.entropy(iterations=50_000))
    run = WasmRun(module=module.path, sha256=module.sha256, determinism=Determinism("task-1/subtask-7"))
    first, second = run_fresh(tmp_path / "a", run), run_fresh(tmp_path / "b", run)
    assert first.ok and second.ok
    assert len(first.stdout) == 40
    assert first.stdout == second.stdout
    assert first.fuel == second.fuel > 50_000


def test_the_seed_decides_the_random_bytes(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    module = guest("entropy", guests.entropy())

    def random_bytes(seed: str) -> bytes:
        run = WasmRun(module=module.path, sha256=module.sha256, determinism=Determinism(seed))
        return asyncio.run(wasm_env.run(run)).stdout[:16]

    assert random_bytes("t/1") == random_bytes("t/1")
    assert random_bytes("t/1") != random_bytes("t/2")


def test_virtual_clocks_start_at_fixed_points_and_advance_per_read(
    wasm_env: WasmEnvironment, guest: GuestFactory
) -> None:
    module = guest("entropy", guests.entropy())
    run = WasmRun(module=module.path, sha256=module.sha256, determinism=Determinism("clock"))
    realtime, monotonic = struct.unpack_from("<QQ", asyncio.run(wasm_env.run(run)).stdout, 16)
    assert realtime == REALTIME_BASE_NS
    assert monotonic == CLOCK_STEP_NS


def test_without_the_profile_randomness_is_real(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    module = guest("entropy", guests.entropy())
    run = WasmRun(module=module.path, sha256=module.sha256)
    outputs = {asyncio.run(wasm_env.run(run)).stdout[:16] for _ in range(3)}
    assert len(outputs) == 3


def test_nan_canonicalisation_gives_the_canonical_nan(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    module = guest("nan", guests.NAN_BITS)
    profile = Determinism("nan", canonicalize_nans=True)
    run = WasmRun(module=module.path, sha256=module.sha256, determinism=profile)
    result = asyncio.run(wasm_env.run(run))
    assert result.ok
    assert struct.unpack("<I", result.stdout)[0] == 0x7FC00000
