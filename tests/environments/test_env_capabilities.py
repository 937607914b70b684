"""Declared capabilities (environments/base.py `Capabilities`), as the registry reports them to the node."""

from __future__ import annotations

import pytest

from environments.base import Capabilities
from environments.registry import UnknownEnvironment, capabilities
from runtime.node.market import Balanced, ProviderOffer

DECLARED = {
    "wasm": Capabilities(deterministic=True, metered=True),
    "docker_cpu": Capabilities(deterministic=False, metered=False, network=True, serves_apps=True),
    "docker_gpu": Capabilities(deterministic=False, metered=False, gpu=True, network=True, serves_apps=True),
    "local": Capabilities(deterministic=False, metered=False, serves_apps=True),
}


@pytest.mark.parametrize("env_id", DECLARED)
def test_each_environment_declares_what_its_runs_are_like(env_id: str) -> None:
    assert capabilities(env_id) == DECLARED[env_id]


@pytest.mark.parametrize("env_id", ["", "WASM", "docker", "nowhere"])
def test_an_unknown_environment_has_no_capabilities(env_id: str) -> None:
    with pytest.raises(UnknownEnvironment, match=f"unknown environment {env_id!r}"):
        capabilities(env_id)


def test_a_metered_environment_is_billed_by_fuel_the_others_by_cpu_time() -> None:
    offer = ProviderOffer("p", {"wasm": 1.0, "docker_cpu": 1.0}, price=2.0, capacity=1)
    market = Balanced()
    assert market.cost(offer, "wasm", fuel=10**9, cpu_ns=0) > 0
    assert market.cost(offer, "wasm", fuel=0, cpu_ns=10**12) == 0
    assert market.cost(offer, "docker_cpu", fuel=10**9, cpu_ns=0) == 0
    assert market.cost(offer, "docker_cpu", fuel=0, cpu_ns=10**12) > 0
