"""Market strategies: which providers get a task's subtasks, and what their work costs.

A strategy is small and pluggable: `accepts` filters the offers that may take a task's subtasks (price,
benchmark score), `cost` turns usage into a bill (fuel for wasm, cpu-ns elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from environments.registry import capabilities, environment_ids

FUEL_UNIT = 1e9
CPU_NS_UNIT = 1e9

MAX_CAPACITY = 1024
"""The most subtasks one provider may offer to compute at once."""
MAX_QUEUE = 64
"""The most assignments one provider may offer to hold queued beyond its capacity."""
MAX_ENV_ID_CHARS = 32


@dataclass(frozen=True)
class ProviderOffer:
    provider_id: str
    envs: dict[str, float]
    price: float
    capacity: int

    memory_mib: int = 0
    """Memory offered per subtask (0: not stated, as by a provider from before memory was offered)."""
    queue: int = 0
    """Assignments it holds beyond `capacity`, queued for a free compute slot (0: none, as by a provider
    from before the queue)."""

    @classmethod
    def checked(
        cls,
        provider_id: str,
        envs: Sequence[tuple[str, float]],
        price: float,
        capacity: int,
        memory_mib: int = 0,
        queue: int = 0,
    ) -> ProviderOffer:
        """An offer from the wire, or ValueError naming the field that is out of bounds: a price that is
        not a finite number >= 0, a capacity outside 1..MAX_CAPACITY, a queue above MAX_QUEUE, an
        environment that is unknown, offered twice or scored with anything but a finite number >= 0."""
        if not math.isfinite(price) or price < 0:
            raise ValueError(f"offer.price must be a finite number >= 0, got {price!r}")
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValueError(f"offer.capacity must be 1 to {MAX_CAPACITY}, got {capacity}")
        if not 0 <= queue <= MAX_QUEUE:
            raise ValueError(f"offer.queue must be 0 to {MAX_QUEUE}, got {queue}")
        if not envs:
            raise ValueError("offer.envs is empty: offer at least one environment")
        scores: dict[str, float] = {}
        for index, (env_id, score) in enumerate(envs):
            field = f"offer.envs[{index}]"
            if len(env_id) > MAX_ENV_ID_CHARS:
                raise ValueError(
                    f"{field}.env_id is {len(env_id)} characters long (at most {MAX_ENV_ID_CHARS})"
                )
            known = environment_ids()
            if env_id not in known:
                raise ValueError(f"{field}.env_id {env_id!r} is unknown; known: {', '.join(known)}")
            if env_id in scores:
                raise ValueError(f"{field}.env_id {env_id!r} is offered twice")
            if not math.isfinite(score) or score < 0:
                raise ValueError(f"{field}.benchmark_score must be a finite number >= 0, got {score!r}")
            scores[env_id] = score
        return cls(provider_id, scores, price, capacity, memory_mib, queue)

    def has_memory_for(self, min_memory_mib: int) -> bool:
        """Whether it offers at least `min_memory_mib` (an offer that does not state its memory is taken
        at its word, as before memory was part of offers)."""
        return self.memory_mib == 0 or self.memory_mib >= min_memory_mib

    def to_json(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "envs": self.envs,
            "price": self.price,
            "capacity": self.capacity,
            "memory_mib": self.memory_mib,
            "queue": self.queue,
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
        units = fuel / FUEL_UNIT if capabilities(env_id).metered else cpu_ns / CPU_NS_UNIT
        return units * offer.price


class PriceCapped(Balanced):
    """Like Balanced, but refuses providers whose price is above `max_price`."""

    name = "price_capped"

    def __init__(self, max_price: float) -> None:
        self.max_price = max_price

    def accepts(self, offer: ProviderOffer, env_id: str, params: dict[str, Any]) -> bool:
        return super().accepts(offer, env_id, params) and offer.price <= self.max_price
