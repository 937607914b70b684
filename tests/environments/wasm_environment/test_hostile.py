"""Hostile modules: each one ends with a clear error, and the environment keeps working afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from environments.wasm import (
    DigestMismatch,
    ModuleRejected,
    Preopen,
    TrapKind,
    WasmEnvironment,
    WasmLimits,
    WasmResult,
    WasmRun,
    WorkerCrashed,
)

from . import guests
from .support import GuestFactory, assert_healthy

WASI_ERRNO_PERM = 63
WASI_ERRNO_NOTCAPABLE = 76


def run(
    env: WasmEnvironment,
    guest: guests.Guest,
    limits: WasmLimits | None = None,
    preopens: tuple[Preopen, ...] = (),
) -> WasmResult:
    return asyncio.run(
        env.run(WasmRun(module=guest.path, sha256=guest.sha256, limits=limits, preopens=preopens))
    )


def test_infinite_loop_is_interrupted_at_the_deadline(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    result = run(wasm_env, guest("endless", guests.ENDLESS), limits=WasmLimits(wall_time_s=0.2))
    assert result.trap is not None and result.trap.kind is TrapKind.DEADLINE
    assert "deadline of 0.2 s exceeded" in result.trap.message
    assert result.exit_code is None and not result.ok
    assert_healthy(wasm_env, tmp_path)


def test_fuel_exhaustion_stops_the_run_at_its_budget(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    result = run(wasm_env, guest("endless", guests.ENDLESS), limits=WasmLimits(fuel=1_000_000))
    assert result.trap is not None and result.trap.kind is TrapKind.OUT_OF_FUEL
    assert "out of fuel" in result.trap.message
    assert result.fuel == 1_000_000
    assert_healthy(wasm_env, tmp_path)


def test_memory_growth_bomb_hits_the_memory_limit(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    limit = 16 << 20
    result = run(wasm_env, guest("bomb", guests.MEMORY_BOMB), limits=WasmLimits(memory_bytes=limit))
    assert result.trap is not None and result.trap.kind is TrapKind.MEMORY_LIMIT
    assert "memory limit" in result.trap.message and "16 MiB" in result.trap.message
    assert result.peak_memory_bytes == limit
    assert_healthy(wasm_env, tmp_path)


def test_module_needing_more_memory_than_the_limit_is_rejected(
    wasm_env: WasmEnvironment, guest: GuestFactory
) -> None:
    big = guest("big", guests.HUGE_MEMORY_MINIMUM)
    with pytest.raises(ModuleRejected, match="cannot be instantiated"):
        run(wasm_env, big, limits=WasmLimits(memory_bytes=16 << 20))


def test_deep_recursion_is_a_stack_overflow(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    result = run(wasm_env, guest("recursion", guests.DEEP_RECURSION))
    assert result.trap is not None and result.trap.kind is TrapKind.STACK_OVERFLOW
    assert "stack overflow" in result.trap.message
    assert_healthy(wasm_env, tmp_path)


@pytest.mark.parametrize("path", [b"/etc/passwd", b"../../../../../../etc/passwd", b"../secret.txt"])
def test_files_outside_the_preopens_cannot_be_read(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path, path: bytes
) -> None:
    (tmp_path / "secret.txt").write_text("the secret")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    result = run(wasm_env, guest("reader", guests.read_file(path)), preopens=(Preopen(inputs, "/inputs"),))
    assert result.exit_code in (WASI_ERRNO_PERM, WASI_ERRNO_NOTCAPABLE)
    assert result.stdout == b""


def test_files_inside_a_preopen_can_be_read(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "data.txt").write_text("visible")
    result = run(
        wasm_env, guest("reader", guests.read_file(b"data.txt")), preopens=(Preopen(inputs, "/inputs"),)
    )
    assert result.ok and result.stdout == b"visible"


@pytest.mark.parametrize(
    ("path", "oflags"), [(b"new.txt", guests.O_CREAT_TRUNC), (b"data.txt", guests.O_TRUNC), (b"data.txt", 0)]
)
def test_a_read_only_input_dir_cannot_be_written(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path, path: bytes, oflags: int
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "data.txt").write_text("original")
    writer = guest("writer", guests.write_file(path, oflags))
    result = run(wasm_env, writer, preopens=(Preopen(inputs, "/inputs", writable=False),))
    assert result.exit_code not in (0, None)
    assert sorted(p.name for p in inputs.iterdir()) == ["data.txt"]
    assert (inputs / "data.txt").read_text() == "original"


def test_a_writable_dir_can_be_written(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    output = tmp_path / "output"
    output.mkdir()
    writer = guest("writer", guests.write_file(b"result.txt"))
    result = run(wasm_env, writer, preopens=(Preopen(output, "/output", writable=True),))
    assert result.ok
    assert (output / "result.txt").read_text() == "pwned"


def test_huge_stdout_is_cut_at_its_cap(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    cap = 1 << 20
    result = run(wasm_env, guest("flood", guests.FLOOD_STDOUT), limits=WasmLimits(stdout_bytes=cap))
    assert result.trap is not None and result.trap.kind is TrapKind.OUTPUT_LIMIT
    assert f"stdout exceeded its cap of {cap} bytes" in result.trap.message
    assert len(result.stdout) == cap
    assert result.exit_code not in (0, None)  # the guest saw its write fail and gave up
    assert_healthy(wasm_env, tmp_path)


def test_importing_a_function_the_host_lacks_is_rejected(
    wasm_env: WasmEnvironment, guest: GuestFactory
) -> None:
    with pytest.raises(ModuleRejected, match="env::launch_missiles, which the host does not provide"):
        run(wasm_env, guest("missiles", guests.MISSING_IMPORT))


def test_a_module_without_start_is_rejected(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    with pytest.raises(ModuleRejected, match="no `_start` function"):
        run(wasm_env, guest("reactor", guests.NO_START))


@pytest.mark.parametrize("data", [b"\x7fELF\x02\x01\x01\x00" + bytes(64), b"(module)", b""])
def test_bytes_that_are_not_wasm_are_rejected(
    wasm_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path, data: bytes
) -> None:
    with pytest.raises(ModuleRejected, match="not a WebAssembly binary"):
        run(wasm_env, guest("notwasm", data))
    assert_healthy(wasm_env, tmp_path)


def test_a_truncated_module_is_rejected(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    with pytest.raises(ModuleRejected, match="not a valid WebAssembly module"):
        run(wasm_env, guest("truncated", b"\0asm\x01\0\0\0\x01\x05"))


def test_a_module_whose_sha256_does_not_match_is_refused(
    wasm_env: WasmEnvironment, guest: GuestFactory
) -> None:
    hello = guest("hello", guests.HELLO)
    wrong = "0" * 64
    with pytest.raises(DigestMismatch, match=f"has sha256 {hello.sha256}, but {wrong} was expected"):
        asyncio.run(wasm_env.run(WasmRun(module=hello.path, sha256=wrong)))


def test_a_missing_module_is_rejected(wasm_env: WasmEnvironment, tmp_path: Path) -> None:
    with pytest.raises(ModuleRejected, match="cannot read module"):
        asyncio.run(wasm_env.run(WasmRun(module=tmp_path / "absent.wasm", sha256="0" * 64)))


def test_a_worker_killed_mid_run_fails_only_that_run(
    fresh_env: WasmEnvironment, guest: GuestFactory, tmp_path: Path
) -> None:
    endless = guest("endless", guests.ENDLESS)
    job = fresh_env.submit(
        WasmRun(module=endless.path, sha256=endless.sha256, limits=WasmLimits(wall_time_s=60))
    )
    while not fresh_env.pool.worker_pids:  # the worker exists as soon as it was handed the run
        time.sleep(0.01)
    os.kill(fresh_env.pool.worker_pids[0], signal.SIGABRT)  # what a wasmtime abort looks like
    with pytest.raises(WorkerCrashed, match=r"was killed by SIGABRT .* it has been replaced"):
        job.result(timeout=60)
    assert_healthy(fresh_env, tmp_path)
