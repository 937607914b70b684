"""Hostile components in the wasm environment: stopped by a named limit, or made deterministic.

Each case runs in a real worker process; afterwards the same environment still runs a benign component.
Loops and memory bombs are small components written in WAT (no build); the cases that need WASI are
entry points of one Python component (tests/security/components/hostile.py), built once per machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from environments.wasm import Determinism, Preopen, TrapKind, WasmConfig, WasmEnvironment, WasmLimits
from environments.wasm.component import ComponentRun
from environments.wasm.component_adapter import interface_name
from environments.wasm.deterministic import REALTIME_BASE_NS
from environments.wasm.errors import ModuleRejected

from .component_build import COMPILE_LIMITS, build_component, compile_cache_dir

HOSTILE_SOURCE = Path(__file__).parent / "components" / "hostile.py"
WASM_PAGE = 1 << 16
LOOP_WAT = """(component
  (core module $m (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin"))))"""
GROW_WAT = """(component
  (core module $m
    (memory 1)
    (func (export "grow") (result i32) (local $pages i32)
      (block $refused
        (loop $more
          (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
          (local.set $pages (i32.add (local.get $pages) (i32.const 16)))
          (br_if $more (i32.lt_u (local.get $pages) (i32.const 65000)))))
      (i32.add (local.get $pages) (i32.const 1))))
  (core instance $i (instantiate $m))
  (func (export "grow") (result u32) (canon lift (core func $i "grow"))))"""
ANSWER_WAT = """(component
  (core module $m (func (export "answer") (result i32) (i32.const 42)))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))"""


def write_component(folder: Path, name: str, wat: str) -> tuple[Path, str]:
    data = bytes(wasmtime.wat2wasm(wat))
    path = folder / f"{name}.wasm"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def env() -> Iterator[WasmEnvironment]:
    environment = WasmEnvironment(
        WasmConfig(cache_dir=compile_cache_dir(), max_parallel=1, compile=COMPILE_LIMITS)
    )
    asyncio.run(environment.prepare())
    yield environment
    asyncio.run(environment.clean_up())


@pytest.fixture(scope="module")
def hostile() -> tuple[Path, str]:
    path = build_component(HOSTILE_SOURCE, "provider-app")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def assert_healthy(env: WasmEnvironment, folder: Path) -> None:
    """The environment (and its worker) still runs a benign component."""
    path, digest = write_component(folder, "answer", ANSWER_WAT)
    result = asyncio.run(env.run(ComponentRun(module=path, sha256=digest, function="answer")))
    assert result.ok and json.loads(result.stdout) == 42


@pytest.mark.parametrize(
    ("name", "wat", "function", "limits", "kind"),
    [
        ("loop", LOOP_WAT, "spin", WasmLimits(fuel=50_000_000), TrapKind.OUT_OF_FUEL),
        ("loop", LOOP_WAT, "spin", WasmLimits(wall_time_s=0.3), TrapKind.DEADLINE),
    ],
    ids=["loop-fuel", "loop-deadline"],
)
def test_a_spinning_component_is_stopped(
    env: WasmEnvironment,
    tmp_path: Path,
    name: str,
    wat: str,
    function: str,
    limits: WasmLimits,
    kind: TrapKind,
) -> None:
    path, digest = write_component(tmp_path, name, wat)
    result = asyncio.run(env.run(ComponentRun(module=path, sha256=digest, function=function, limits=limits)))
    assert result.trap is not None and result.trap.kind is kind, result
    assert_healthy(env, tmp_path)


@pytest.mark.parametrize("memory_mib", [4, 32])
def test_a_component_cannot_grow_memory_past_its_limit(
    env: WasmEnvironment, tmp_path: Path, memory_mib: int
) -> None:
    path, digest = write_component(tmp_path, "grow", GROW_WAT)
    limits = WasmLimits(memory_bytes=memory_mib << 20)
    result = asyncio.run(env.run(ComponentRun(module=path, sha256=digest, function="grow", limits=limits)))
    assert result.ok, result
    pages = json.loads(result.stdout)
    assert 0 < pages * WASM_PAGE <= limits.memory_bytes, pages
    assert_healthy(env, tmp_path)


def call_hostile(
    env: WasmEnvironment, hostile: tuple[Path, str], folder: Path, attack: str, **options: Any
) -> tuple[Any, Any]:
    """Run one attack as a compute; the result and what it wrote (None when it wrote nothing)."""
    inputs, output = folder / "inputs", folder / "output"
    inputs.mkdir(parents=True, exist_ok=True)
    output.mkdir(exist_ok=True)
    (inputs / "resource.txt").write_text("input")
    path, digest = hostile
    run = ComponentRun(
        module=path,
        sha256=digest,
        preopens=(Preopen(inputs, "/inputs"), Preopen(output, "/output", writable=True)),
        determinism=Determinism(options.pop("seed", "task/subtask")),
        limits=options.pop("limits", WasmLimits(wall_time_s=30)),
        interface=interface_name("provider"),
        function="compute",
        args=({"task-id": "t", "subtask-id": "s", "subtask-params-json": json.dumps({"attack": attack})},),
    )
    result = asyncio.run(env.run(run))
    written = output / "result.json"
    return result, json.loads(written.read_text()) if written.is_file() else None


@pytest.mark.parametrize(
    ("attack", "limits", "kind", "message"),
    [
        ("loop", WasmLimits(fuel=2_000_000_000), TrapKind.OUT_OF_FUEL, "out of fuel"),
        ("loop", WasmLimits(wall_time_s=1.0), TrapKind.DEADLINE, "deadline"),
        ("memory", WasmLimits(memory_bytes=64 << 20, wall_time_s=30), TrapKind.TRAP, ""),
        ("sleep", WasmLimits(wall_time_s=30), TrapKind.HOST_ERROR, "subscribe"),
    ],
    ids=["loop-fuel", "loop-deadline", "memory-bomb", "sleep"],
)
def test_a_hostile_python_component_is_stopped(
    env: WasmEnvironment,
    hostile: tuple[Path, str],
    tmp_path: Path,
    attack: str,
    limits: WasmLimits,
    kind: TrapKind,
    message: str,
) -> None:
    result, written = call_hostile(env, hostile, tmp_path, attack, limits=limits)
    assert result.trap is not None and result.trap.kind is kind, result
    assert message in result.trap.message
    assert written is None
    assert_healthy(env, tmp_path)


OUTPUT_QUOTA = WasmLimits(wall_time_s=30, output_bytes=256 << 10, output_files=20)


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ("big-file", f"output limit of {256 << 10} bytes reached"),
        ("many-files", "output file limit of 20 files reached"),
    ],
)
def test_output_past_the_quota_stops_a_component(
    env: WasmEnvironment, hostile: tuple[Path, str], tmp_path: Path, attack: str, message: str
) -> None:
    result, written = call_hostile(env, hostile, tmp_path, attack, limits=OUTPUT_QUOTA)
    assert result.trap is not None and result.trap.kind is TrapKind.OUTPUT_LIMIT, result
    assert message in result.trap.message
    assert written is None
    output = tmp_path / "output"
    assert all(path.stat().st_size <= OUTPUT_QUOTA.output_bytes + 1 for path in output.iterdir())
    assert sum(1 for _ in output.iterdir()) < 5000
    assert_healthy(env, tmp_path)


def test_clocks_are_virtual_and_repeatable(
    env: WasmEnvironment, hostile: tuple[Path, str], tmp_path: Path
) -> None:
    first = call_hostile(env, hostile, tmp_path / "a", "clock")
    second = call_hostile(env, hostile, tmp_path / "b", "clock")
    assert first[0].ok and second[0].ok
    assert first[1] == second[1]
    assert abs(first[1]["time"] - REALTIME_BASE_NS / 1e9) < 1, first[1]
    assert first[1]["later"] > first[1]["time"]  # virtual time still moves forward
    assert first[0].fuel == second[0].fuel


@pytest.mark.parametrize("seed", ["task/one", "task/two"])
def test_randomness_is_seeded(
    env: WasmEnvironment, hostile: tuple[Path, str], tmp_path: Path, seed: str
) -> None:
    first = call_hostile(env, hostile, tmp_path / "a", "random", seed=seed)
    again = call_hostile(env, hostile, tmp_path / "b", "random", seed=seed)
    other = call_hostile(env, hostile, tmp_path / "c", "random", seed=seed + "x")
    assert first[1] == again[1] and first[0].fuel == again[0].fuel
    assert other[1]["urandom"] != first[1]["urandom"]


def test_nothing_outside_the_preopens_is_reachable(
    env: WasmEnvironment, hostile: tuple[Path, str], tmp_path: Path
) -> None:
    result, written = call_hostile(env, hostile, tmp_path, "files")
    assert result.ok, result
    assert set(written) == {"etc_passwd", "dotdot", "root_listing", "write_inputs", "proc"}
    assert all("error" in attempt for attempt in written.values()), written
    assert not (tmp_path / "inputs" / "planted").exists()


@pytest.mark.parametrize(("attack", "field"), [("network", "connect"), ("environment", "environ")])
def test_no_network_and_no_host_environment(
    env: WasmEnvironment, hostile: tuple[Path, str], tmp_path: Path, attack: str, field: str
) -> None:
    result, written = call_hostile(env, hostile, tmp_path, attack)
    assert result.ok, result
    if attack == "network":
        assert "error" in written[field], written
    else:
        assert written[field] == {"TASKAPI_OPERATION": "compute"} or written[field] == {}, written


def test_a_module_is_not_taken_for_a_component(env: WasmEnvironment, tmp_path: Path) -> None:
    data = bytes(wasmtime.wat2wasm('(module (func (export "answer") (result i32) (i32.const 1)))'))
    path = tmp_path / "core.wasm"
    path.write_bytes(data)
    run = ComponentRun(module=path, sha256=hashlib.sha256(data).hexdigest(), function="answer")
    with pytest.raises(ModuleRejected, match="not a WebAssembly component"):
        asyncio.run(env.run(run))
    assert_healthy(env, tmp_path)
