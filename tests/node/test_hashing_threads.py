"""Where a provider or requestor hashes a result: on the event loop when the file is small (a thread
hand-off costs more than the hashing), in a thread when it is big (the loop must not stall on it)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

import pytest

from runtime.node.resources import READ_ON_LOOP_BYTES, HashedFile, hash_off_loop_if_big


async def hashing_thread(folder: Path, path: Path) -> tuple[int, int, str]:
    """(the loop's thread, the thread that hashed the file, its sha256)."""
    hashed_in: list[int] = []

    def read() -> HashedFile:
        hashed_in.append(threading.get_ident())
        return HashedFile.open(folder, path)

    result = await hash_off_loop_if_big(path, read)
    result.close()
    return threading.get_ident(), hashed_in[0], result.sha256


@pytest.mark.parametrize(
    ("size", "on_loop"), [(100, True), (READ_ON_LOOP_BYTES, True), (READ_ON_LOOP_BYTES + 1, False)]
)
def test_small_results_are_hashed_on_the_loop_and_big_ones_in_a_thread(
    tmp_path: Path, size: int, on_loop: bool
) -> None:
    result = tmp_path / "result.bin"
    result.write_bytes(b"r" * size)
    loop_thread, hashing, digest = asyncio.run(hashing_thread(tmp_path, result))
    assert (hashing == loop_thread) is on_loop
    assert digest == hashlib.sha256(b"r" * size).hexdigest()


def test_a_missing_result_raises_from_its_read_on_the_loop(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(hashing_thread(tmp_path, tmp_path / "never-written"))
