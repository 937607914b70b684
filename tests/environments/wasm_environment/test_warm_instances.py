"""Warm component runs (`ComponentRun.warm`): one live instance per configuration, kept between calls,
each call still under its own fuel; a call that traps gives its instance up."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import wasmtime

from environments.wasm.component import ComponentRun
from environments.wasm.component_executor import WARM_INSTANCES, ComponentExecutor
from environments.wasm.runs import Determinism, Preopen, TrapKind, WasmLimits

COUNTER_WAT = """(component
  (core module $m
    (global $calls (mut i32) (i32.const 0))
    (func (export "next") (result i32)
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (global.get $calls))
    (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m))
  (func (export "next") (result u32) (canon lift (core func $i "next")))
  (func (export "spin") (canon lift (core func $i "spin"))))"""
"""Counts its calls in a global: a fresh instance answers 1."""
LIMITS = WasmLimits(fuel=5_000_000, wall_time_s=30)


@pytest.fixture
def executor(tmp_path: Path) -> ComponentExecutor:
    return ComponentExecutor(tmp_path / "cache")


@pytest.fixture
def counter(tmp_path: Path) -> tuple[Path, str]:
    data = bytes(wasmtime.wat2wasm(COUNTER_WAT))
    path = tmp_path / "counter.wasm"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def call(
    executor: ComponentExecutor,
    counter: tuple[Path, str],
    state: Path,
    function: str = "next",
    *,
    warm: bool = True,
    seed: str = "task",
) -> tuple[bytes, int, TrapKind | None]:
    """(return value as JSON, fuel, trap kind) of one call with `state` preopened as /task."""
    state.mkdir(exist_ok=True)
    module, sha256 = counter
    run = ComponentRun(
        module=module,
        sha256=sha256,
        preopens=(Preopen(state, "/task", writable=True),),
        limits=LIMITS,
        determinism=Determinism(seed),
        function=function,
        warm=warm,
    )
    result = executor.run(run)
    return result.stdout, result.fuel, None if result.trap is None else result.trap.kind


def test_warm_calls_of_one_configuration_share_an_instance_and_cold_ones_never_do(
    executor: ComponentExecutor, counter: tuple[Path, str], tmp_path: Path
) -> None:
    task = tmp_path / "task-a"
    answers = [call(executor, counter, task, seed=f"task/sub-{n}")[0] for n in range(3)]
    assert answers == [b"1", b"2", b"3"]  # each call its own seed, the same instance
    assert [call(executor, counter, task, warm=False)[0] for _ in range(2)] == [b"1", b"1"]
    assert call(executor, counter, tmp_path / "task-b")[0] == b"1", (
        "another task's preopens shared an instance"
    )
    assert call(executor, counter, task)[0] == b"4"


def test_each_warm_call_has_its_own_fuel(
    executor: ComponentExecutor, counter: tuple[Path, str], tmp_path: Path
) -> None:
    fuels = [call(executor, counter, tmp_path / "task")[1] for _ in range(5)]
    assert fuels[1] == fuels[2] == fuels[3] == fuels[4] > 0, fuels  # not a budget used up across calls
    _, fuel, trap = call(executor, counter, tmp_path / "task", "spin")
    assert trap is TrapKind.OUT_OF_FUEL and fuel == LIMITS.fuel


def test_an_instance_whose_call_trapped_is_given_up(
    executor: ComponentExecutor, counter: tuple[Path, str], tmp_path: Path
) -> None:
    task = tmp_path / "task"
    assert [call(executor, counter, task)[0] for _ in range(2)] == [b"1", b"2"]
    assert call(executor, counter, task, "spin")[2] is TrapKind.OUT_OF_FUEL
    assert call(executor, counter, task)[0] == b"1"


def test_a_worker_keeps_only_the_most_recently_used_instances(
    executor: ComponentExecutor, counter: tuple[Path, str], tmp_path: Path
) -> None:
    tasks = [tmp_path / f"task-{n}" for n in range(WARM_INSTANCES + 1)]
    for task in tasks:
        assert call(executor, counter, task)[0] == b"1"
    assert call(executor, counter, tasks[-1])[0] == b"2"
    assert call(executor, counter, tasks[0])[0] == b"1", "more live instances kept than WARM_INSTANCES"
