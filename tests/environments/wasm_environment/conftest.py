"""Fixtures: real wasm environments (worker processes, private compile caches) and modules on disk."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from environments.wasm import WasmEnvironment

from .guests import write_guest
from .support import GuestFactory, make_environment


@pytest.fixture(scope="session")
def wasm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WasmEnvironment]:
    """One enabled environment shared by the whole session (its workers stay warm)."""
    env = make_environment(tmp_path_factory.mktemp("wasm-cache") / "cache")
    yield env
    asyncio.run(env.clean_up())


@pytest.fixture
def fresh_env(tmp_path: Path) -> Iterator[WasmEnvironment]:
    """An environment of its own, with one worker, for tests that kill workers or count them."""
    env = make_environment(tmp_path / "fresh-cache", max_parallel=1)
    yield env
    asyncio.run(env.clean_up())


@pytest.fixture
def guest(tmp_path: Path) -> GuestFactory:
    """Writes a module (WAT or raw bytes) under the test's tmp dir."""
    modules = tmp_path / "modules"
    modules.mkdir()
    return lambda name, source: write_guest(modules, name, source)
