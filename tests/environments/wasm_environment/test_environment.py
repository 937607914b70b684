"""The wasm environment as an `Environment`: support, prerequisites, benchmark, enabled-only use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from environments.base import EnvironmentDisabled, PrerequisitesRefused
from environments.wasm import WasmConfig, WasmEnvironment, WasmPrerequisites, WasmRun

from . import guests
from .support import GuestFactory, make_environment


def test_nothing_runs_before_prepare(guest: GuestFactory, tmp_path: Path) -> None:
    hello = guest("hello", guests.HELLO)
    env = WasmEnvironment(WasmConfig(cache_dir=tmp_path / "cache"))
    with pytest.raises(EnvironmentDisabled, match="environment wasm is DISABLED; it must be ENABLED"):
        asyncio.run(env.run(WasmRun(module=hello.path, sha256=hello.sha256)))


def test_prerequisites_are_checked_and_compiled(guest: GuestFactory, tmp_path: Path) -> None:
    hello = guest("hello", guests.HELLO)
    env = make_environment(tmp_path / "cache", max_parallel=1)
    try:
        asyncio.run(env.install_prerequisites(WasmPrerequisites(module=str(hello.path), sha256=hello.sha256)))
        assert asyncio.run(env.compile(hello.path, hello.sha256)).cached
        wrong = WasmPrerequisites(module=str(hello.path), sha256="0" * 64)
        with pytest.raises(PrerequisitesRefused, match=r"has sha256 .* but 0{64} was expected"):
            asyncio.run(env.install_prerequisites(wrong))
        bare = WasmPrerequisites(module="hello.wasm", sha256=hello.sha256)
        with pytest.raises(PrerequisitesRefused, match="bare name but no module_dir is configured"):
            asyncio.run(env.install_prerequisites(bare))
    finally:
        asyncio.run(env.clean_up())


def test_bare_module_names_are_found_in_module_dir(guest: GuestFactory, tmp_path: Path) -> None:
    hello = guest("hello", guests.HELLO)
    env = WasmEnvironment(
        WasmConfig(cache_dir=tmp_path / "cache", module_dir=hello.path.parent, max_parallel=1)
    )
    asyncio.run(env.prepare())
    try:
        asyncio.run(env.install_prerequisites(WasmPrerequisites(module="hello.wasm", sha256=hello.sha256)))
        absent = WasmPrerequisites(module="absent.wasm", sha256="1" * 64)
        with pytest.raises(PrerequisitesRefused, match="cannot read module"):
            asyncio.run(env.install_prerequisites(absent))
    finally:
        asyncio.run(env.clean_up())


def test_prerequisites_must_name_a_sha256() -> None:
    with pytest.raises(ValueError, match="sha256"):
        WasmPrerequisites(module="app.wasm", sha256="not-hex")


def test_benchmark_scores_the_machine_with_a_fixed_amount_of_work(wasm_env: WasmEnvironment) -> None:
    first, second = asyncio.run(wasm_env.benchmark()), asyncio.run(wasm_env.benchmark())
    assert first.score > 0 and second.score > 0
    assert first.usage.fuel == second.usage.fuel  # the same work, whatever the machine's speed
