"""One download per file on a provider (issue 12, item 3).

Subtasks started together on one provider all need the app's module: before the fix each downloaded it
into the same `<sha>.wasm.partial`, and all but the first failed (FileNotFoundError on the rename). Here:
`Downloads` itself with concurrent callers, and whole tasks on a provider of capacity 4 with a cold
module cache, over real gRPC, many times over.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from runtime.node.compute import WasmRunner
from runtime.node.embedded import run_embedded
from runtime.node.resources import Downloads, VerifiedFiles
from runtime.node.runners import builtin_whitelist

DATA = b"module bytes " * 50_000
DIGEST = hashlib.sha256(DATA).hexdigest()


class Source:
    """A download that writes `data` in chunks, yielding to the loop between them (as a stream does)."""

    def __init__(self, data: bytes = DATA) -> None:
        self.data = data
        self.calls = 0

    async def __call__(self, handle: BinaryIO) -> None:
        self.calls += 1
        for offset in range(0, len(self.data), 64 * 1024):
            handle.write(self.data[offset : offset + 64 * 1024])
            await asyncio.sleep(0)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".partial"))


@pytest.mark.parametrize("callers", [2, 4, 16])
def test_concurrent_callers_share_one_download(tmp_path: Path, callers: int) -> None:
    target, source, downloads = tmp_path / f"{DIGEST}.wasm", Source(), Downloads()

    async def scenario() -> None:
        await asyncio.gather(*(downloads.ensure(target, DIGEST, source, "module") for _ in range(callers)))

    asyncio.run(scenario())
    assert source.calls == 1
    assert target.read_bytes() == DATA
    assert leftovers(tmp_path) == []


def test_a_verified_copy_is_not_downloaded_again(tmp_path: Path) -> None:
    target, source = tmp_path / "m.wasm", Source()
    target.write_bytes(DATA)
    asyncio.run(Downloads().ensure(target, DIGEST, source, "module"))
    assert source.calls == 0


def test_bytes_with_another_digest_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    target, downloads = tmp_path / "m.wasm", Downloads()

    async def scenario() -> list[BaseException | None]:
        results = await asyncio.gather(
            *(downloads.ensure(target, DIGEST, Source(b"forged"), "module m") for _ in range(3)),
            return_exceptions=True,
        )
        return [result if isinstance(result, BaseException) else None for result in results]

    errors = asyncio.run(scenario())
    assert all(isinstance(error, ValueError) for error in errors), errors
    assert "module m arrived with sha256" in str(errors[0])
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_a_cancelled_first_caller_leaves_the_download_to_the_others(tmp_path: Path) -> None:
    target, source, downloads = tmp_path / "m.wasm", Source(), Downloads()

    async def scenario() -> None:
        first = asyncio.ensure_future(downloads.ensure(target, DIGEST, source, "module"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(downloads.ensure(target, DIGEST, source, "module"))
        await asyncio.sleep(0)
        first.cancel()
        await second

    asyncio.run(scenario())
    assert source.calls == 1
    assert target.read_bytes() == DATA


RUNS = 10


def test_capacity_4_with_a_cold_module_cache_fails_no_subtask(tmp_path: Path) -> None:
    """A requestor and a provider of capacity 4 (in-process, real gRPC), each run with a fresh provider
    data dir, so its first four subtasks all fetch the module at once."""
    params = {"input": "cold-cache", "difficulty": 8, "subtasks": 8}
    for run in range(RUNS):
        status = asyncio.run(
            run_embedded(
                "tutorialapp",
                "wasm",
                params,
                data_dir=tmp_path / f"run-{run}",
                providers=1,
                capacity=4,
                runners=lambda: [WasmRunner()],
                whitelist=builtin_whitelist(),
            )
        )
        states = dict(status.subtasks_by_state)
        assert status.state == "finished", (run, status.state, status.reason)
        assert "failed" not in states, f"run {run}: {states}"
        modules = tmp_path / f"run-{run}" / "provider-0" / "modules"
        assert leftovers(modules) == [], f"run {run}: temporary files left in {modules}"


@pytest.mark.parametrize("change", ["rewritten in place", "replaced", "removed"])
def test_a_verified_file_that_changed_is_checked_and_fetched_again(tmp_path: Path, change: str) -> None:
    """A file hashed once is not hashed on every call, but any change to it since is seen."""
    target, source, downloads = tmp_path / "m.wasm", Source(), Downloads()

    async def scenario() -> None:
        await downloads.ensure(target, DIGEST, source, "module")
        await downloads.ensure(target, DIGEST, source, "module")  # verified: nothing to fetch
        assert source.calls == 1
        await asyncio.sleep(0.05)  # past the kernel clock's tick of the hash
        tampered = DATA.replace(b"module", b"MODULE", 1)
        if change == "rewritten in place":
            with open(target, "r+b") as handle:
                handle.write(tampered[:64])
        elif change == "replaced":
            (tmp_path / "other").write_bytes(tampered)
            (tmp_path / "other").replace(target)
        else:
            target.unlink()
        await downloads.ensure(target, DIGEST, source, "module")

    asyncio.run(scenario())
    assert source.calls == 2
    assert target.read_bytes() == DATA


@pytest.mark.parametrize("change", ["rewritten in place", "replaced", "removed", "none"])
def test_a_file_verified_once_holds_its_digest_only_while_unchanged(tmp_path: Path, change: str) -> None:
    """What the re-execution's check of an app's module relies on (runtime/node/reexecute.py)."""
    module, files = tmp_path / "app.wasm", VerifiedFiles()
    module.write_bytes(DATA)
    assert files.holds(module, DIGEST) and files.known(module, DIGEST)
    assert not files.holds(module, hashlib.sha256(b"other").hexdigest())
    time.sleep(0.05)  # past the kernel clock's tick of the hash
    if change == "rewritten in place":
        with open(module, "r+b") as handle:
            handle.write(b"MODULE")
    elif change == "replaced":
        (tmp_path / "new").write_bytes(DATA[:-1] + b"!")
        (tmp_path / "new").replace(module)
    elif change == "removed":
        module.unlink()
    unchanged = change == "none"
    assert files.known(module, DIGEST) is unchanged
    assert files.holds(module, DIGEST) is unchanged
