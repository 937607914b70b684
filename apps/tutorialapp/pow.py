"""The proof-of-work kernel shared by both sides of tutorialapp."""

from __future__ import annotations

import hashlib
import time

BENCHMARK_HASHES = 200_000


def digest(text: str, nonce: int) -> bytes:
    return hashlib.sha256(f"{text}{nonce}".encode()).digest()


def leading_zero_bits(data: bytes) -> int:
    """Number of leading zero bits of `data` (8 * len for all zeros)."""
    value = int.from_bytes(data, "big")
    return len(data) * 8 - value.bit_length()


def meets(text: str, nonce: int, difficulty: int) -> bool:
    return leading_zero_bits(digest(text, nonce)) >= difficulty


def search(text: str, difficulty: int, start: int, end: int) -> int | None:
    """The smallest nonce in [start, end) that meets `difficulty`, or None."""
    return next((nonce for nonce in range(start, end) if meets(text, nonce, difficulty)), None)


def fixed_work() -> int:
    """Hash `BENCHMARK_HASHES` nonces (a fixed amount of work, no clock read); returns that count."""
    search("benchmark", 256, 0, BENCHMARK_HASHES)
    return BENCHMARK_HASHES


def benchmark() -> float:
    """Hashes per second over a fixed amount of hashing."""
    began = time.perf_counter()
    hashes = fixed_work()
    return hashes / (time.perf_counter() - began)
