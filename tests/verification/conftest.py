"""Fixtures of the verification tests: the honest wasm benchmark score of this machine, measured once."""

from __future__ import annotations

import asyncio

import pytest

from .harness import measure_benchmark


@pytest.fixture(scope="session")
def honest_score() -> float:
    """What an honest provider on this machine claims (the real benchmark, Mfuel/s)."""
    return asyncio.run(measure_benchmark())
