"""Declared capabilities (environments/base.py `Capabilities`), as the registry reports them to the node."""

from __future__ import annotations

import pytest

from environments.base import Capabilities, PayloadKind
from environments.registry import UnknownEnvironment, by_preference, capabilities, payload_kind
from runtime.node.market import Balanced, ProviderOffer

DECLARED = {
    "wasm": Capabilities(deterministic=True, metered=True),
    "docker_cpu": Capabilities(deterministic=False, metered=False, network=True, serves_apps=True),
    "docker_gpu": Capabilities(deterministic=False, metered=False, gpu=True, network=True, serves_apps=True),
    "local": Capabilities(deterministic=False, metered=False, serves_apps=True, sandboxed=False),
}
KINDS = {
    "wasm": PayloadKind.WASM_MODULE,
    "docker_cpu": PayloadKind.CONTAINER_IMAGE,
    "docker_gpu": PayloadKind.CONTAINER_IMAGE,
    "local": PayloadKind.PYTHON_PACKAGE,
}


@pytest.mark.parametrize("env_id", DECLARED)
def test_each_environment_declares_what_its_runs_are_like(env_id: str) -> None:
    assert capabilities(env_id) == DECLARED[env_id]


@pytest.mark.parametrize("env_id", KINDS)
def test_each_environment_declares_what_its_app_builds_are(env_id: str) -> None:
    assert payload_kind(env_id) is KINDS[env_id]


@pytest.mark.parametrize("env_id", ["", "WASM", "docker", "nowhere"])
def test_an_unknown_environment_has_no_capabilities(env_id: str) -> None:
    with pytest.raises(UnknownEnvironment, match=f"unknown environment {env_id!r}"):
        capabilities(env_id)
    with pytest.raises(UnknownEnvironment, match=f"unknown environment {env_id!r}"):
        payload_kind(env_id)


def test_the_default_environment_is_sandboxed_deterministic_metered_and_gpu_free() -> None:
    assert by_preference(["local", "docker_gpu", "docker_cpu", "wasm"]) == [
        "wasm",
        "docker_cpu",
        "docker_gpu",
        "local",
    ]
    assert by_preference(["nowhere", "local"]) == ["local", "nowhere"]


def test_a_metered_environment_is_billed_by_fuel_the_others_by_cpu_time() -> None:
    offer = ProviderOffer("p", {"wasm": 1.0, "docker_cpu": 1.0}, price=2.0, capacity=1)
    market = Balanced()
    assert market.cost(offer, "wasm", fuel=10**9, cpu_ns=0) > 0
    assert market.cost(offer, "wasm", fuel=0, cpu_ns=10**12) == 0
    assert market.cost(offer, "docker_cpu", fuel=10**9, cpu_ns=0) == 0
    assert market.cost(offer, "docker_cpu", fuel=0, cpu_ns=10**12) > 0
