"""Market strategies: which providers get a task's subtasks, and what their work costs.

A strategy is small and pluggable: `accepts` filters the offers that may take a task's subtasks (price,
benchmark score), `cost` turns usage into a bill (fuel for wasm, cpu-ns elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

FUEL_UNIT = 1e9
CPU_NS_UNIT = 1e9


@dataclass(frozen=True)
class ProviderOffer:
    provider_id: str
    envs: dict[str, float]
    price: float
    capacity: int

    def to_json(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "envs": self.envs,
            "price": self.price,
            "capacity": self.capacity,
        }


class MarketStrategy(Protocol):
    name: str

    def accepts(self, offer: ProviderOffer, env_id: str, params: dict[str, Any]) -> bool:
        """Whether this provider may compute subtasks of a task in `env_id` with these parameters."""

    def cost(self, offer: ProviderOffer, env_id: str, fuel: int, cpu_ns: int) -> float:
        """The bill for one subtask's usage at the offer's price."""


class Balanced:
    """Any provider offering the environment, at any price; billed by fuel (wasm) or cpu time."""

    name = "balanced"

    def accepts(self, offer: ProviderOffer, env_id: str, params: dict[str, Any]) -> bool:
        return env_id in offer.envs

    def cost(self, offer: ProviderOffer, env_id: str, fuel: int, cpu_ns: int) -> float:
        units = fuel / FUEL_UNIT if env_id == "wasm" else cpu_ns / CPU_NS_UNIT
        return units * offer.price


class PriceCapped(Balanced):
    """Like Balanced, but refuses providers whose price is above `max_price`."""

    name = "price_capped"

    def __init__(self, max_price: float) -> None:
        self.max_price = max_price

    def accepts(self, offer: ProviderOffer, env_id: str, params: dict[str, Any]) -> bool:
        return super().accepts(offer, env_id, params) and offer.price <= self.max_price
