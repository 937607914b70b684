"""Fixtures of the verification tests: the honest wasm benchmark score of this machine, measured once."""

from __future__ import annotations

import asyncio

import pytest

from environments.wasm.environment import WasmEnvironment


async def _measure() -> float:
    environment = WasmEnvironment()
    await environment.prepare()
    try:
        return float((await environment.benchmark()).score)
    finally:
        await environment.clean_up()


@pytest.fixture(scope="session")
def honest_score() -> float:
    """What an honest provider on this machine claims (the real benchmark, Mfuel/s)."""
    return asyncio.run(_measure())
