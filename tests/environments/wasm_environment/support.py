"""Helpers shared by the wasm environment tests: making environments and checking they still work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from environments.wasm import WasmConfig, WasmEnvironment, WasmRun

from .guests import HELLO, Guest, write_guest

GuestFactory = Callable[[str, str | bytes], Guest]


def make_environment(cache_dir: Path, max_parallel: int = 2) -> WasmEnvironment:
    """An enabled wasm environment with its own compile cache."""
    env = WasmEnvironment(WasmConfig(cache_dir=cache_dir, max_parallel=max_parallel))
    asyncio.run(env.prepare())
    return env


def assert_healthy(env: WasmEnvironment, tmp_path: Path) -> None:
    """The environment still runs a benign module normally."""
    hello = write_guest(tmp_path, "healthy-hello", HELLO)
    result = asyncio.run(env.run(WasmRun(module=hello.path, sha256=hello.sha256)))
    assert result.ok and result.stdout == b"hello\n"
