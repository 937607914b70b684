"""Content-addressed files: sha256 digests, a registry of what the requestor serves, chunked transfer."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

CHUNK_BYTES = 256 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from iter(lambda: handle.read(CHUNK_BYTES), b"")


class ResourceRegistry:
    """The files a requestor serves to providers, by sha256 (only registered files are reachable)."""

    def __init__(self) -> None:
        self._paths: dict[str, Path] = {}

    def register(self, path: Path, digest: str | None = None) -> str:
        """Serve `path` under its digest (computed unless the caller knows it); return the digest."""
        digest = digest or sha256_file(path)
        self._paths[digest] = path
        return digest

    def path(self, digest: str) -> Path | None:
        return self._paths.get(digest)
