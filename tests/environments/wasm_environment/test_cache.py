"""The compile cache: hits in memory and on disk, and never trusting an artifact this node did not write."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from environments.wasm import ModuleRejected, WasmEnvironment, WasmRun
from environments.wasm.errors import CacheDirUnsafe

from . import guests
from .support import GuestFactory, make_environment


def compile_in_fresh_env(cache_dir: Path, module: guests.Guest) -> list[bool]:
    """Compile twice in a new environment; whether each came from the cache."""
    env = make_environment(cache_dir, max_parallel=1)
    try:
        return [asyncio.run(env.compile(module.path, module.sha256)).cached for _ in range(2)]
    finally:
        asyncio.run(env.clean_up())


def test_a_compiled_module_is_reused_in_memory_and_from_disk(guest: GuestFactory, tmp_path: Path) -> None:
    hello = guest("hello", guests.HELLO)
    cache = tmp_path / "cache"
    assert compile_in_fresh_env(cache, hello) == [False, True]
    assert compile_in_fresh_env(cache, hello) == [True, True]
    assert len(list(cache.glob("*.cwasm"))) == 1
    assert (cache.stat().st_mode & 0o777) == 0o700


def test_a_cache_hit_runs_the_code_that_was_verified(guest: GuestFactory, tmp_path: Path) -> None:
    hello = guest("hello", guests.HELLO)
    env = make_environment(tmp_path / "cache", max_parallel=1)
    try:
        asyncio.run(env.compile(hello.path, hello.sha256))
        hello.path.write_bytes(b"replaced after it was verified")
        result = asyncio.run(env.run(WasmRun(module=hello.path, sha256=hello.sha256)))
        assert result.ok and result.stdout == b"hello\n"
    finally:
        asyncio.run(env.clean_up())


def test_a_moved_or_touched_artifact_is_rechecked_and_still_used(guest: GuestFactory, tmp_path: Path) -> None:
    hello = guest("hello", guests.HELLO)
    cache = tmp_path / "cache"
    compile_in_fresh_env(cache, hello)
    [artifact] = cache.glob("*.cwasm")
    copy = artifact.with_name("copy")
    shutil.copy(artifact, copy)
    copy.replace(artifact)  # same bytes, new inode and mtime
    assert compile_in_fresh_env(cache, hello) == [True, True]


@pytest.mark.parametrize("forgery", ["garbage", "foreign artifact", "foreign artifact and seal"])
def test_an_artifact_this_node_did_not_write_is_never_loaded(
    guest: GuestFactory, tmp_path: Path, forgery: str
) -> None:
    hello = guest("hello", guests.HELLO)
    other = guest("other", guests.fixed_output(b"forged\n"))
    cache = tmp_path / "cache"
    compile_in_fresh_env(cache, hello)
    [artifact] = cache.glob("*.cwasm")
    if forgery == "garbage":
        artifact.write_bytes(b"not an artifact")
    else:  # a genuine artifact of another module, compiled by another node (with its own secret)
        compile_in_fresh_env(tmp_path / "other-cache", other)
        [foreign] = (tmp_path / "other-cache").glob("*.cwasm")
        artifact.write_bytes(foreign.read_bytes())
        if forgery == "foreign artifact and seal":
            artifact.with_suffix(".seal").write_bytes(foreign.with_suffix(".seal").read_bytes())
    assert compile_in_fresh_env(cache, hello) == [False, True]
    env = make_environment(cache, max_parallel=1)
    try:
        assert asyncio.run(env.run(WasmRun(module=hello.path, sha256=hello.sha256))).stdout == b"hello\n"
    finally:
        asyncio.run(env.clean_up())


def test_a_cache_dir_open_to_others_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    cache.chmod(0o755)
    with pytest.raises(CacheDirUnsafe, match=r"must be owned by uid .* with mode 0700"):
        make_environment(cache)


def test_a_rejected_module_is_not_cached(wasm_env: WasmEnvironment, guest: GuestFactory) -> None:
    missiles = guest("missiles", guests.MISSING_IMPORT)
    for _ in range(2):
        with pytest.raises(ModuleRejected):
            asyncio.run(wasm_env.compile(missiles.path, missiles.sha256))
    assert not list(wasm_env.config.cache_dir.glob(f"{missiles.sha256}-*"))
