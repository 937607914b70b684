"""wasmtime engines for untrusted modules: fuel, epoch interruption, a deterministic feature set.

Each engine has exactly one ticker thread that advances its epoch every `TICK_S`; a store's deadline is
a number of ticks. Engines differ only by NaN canonicalisation, so a worker holds at most two.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata

import wasmtime

TICK_S = 0.01
"""Epoch period: the resolution of wall-clock deadlines."""


@dataclass(frozen=True)
class EngineProfile:
    """Every engine setting that changes compiled code (so it is part of the compile-cache key)."""

    canonicalize_nans: bool = False
    consume_fuel: bool = True
    epoch_interruption: bool = True
    threads: bool = False
    relaxed_simd: bool = False

    def fingerprint(self) -> str:
        """Hex digest of the settings, the wasmtime version and the CPU architecture."""
        identity = {
            **asdict(self),
            "wasmtime": metadata.version("wasmtime"),
            "machine": platform.machine(),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def config_settings(self) -> dict[str, bool]:
        """The `wasmtime.Config` attributes this profile sets (also what the compiler process is given)."""
        return {
            "consume_fuel": self.consume_fuel,
            "epoch_interruption": self.epoch_interruption,
            "wasm_threads": self.threads,
            "wasm_relaxed_simd": self.relaxed_simd,
            "cranelift_nan_canonicalization": self.canonicalize_nans,
        }

    def build(self) -> wasmtime.Engine:
        config = wasmtime.Config()
        for name, value in self.config_settings().items():
            setattr(config, name, value)
        return wasmtime.Engine(config)


def deadline_ticks(wall_time_s: float) -> int:
    """Epoch ticks covering `wall_time_s` (one extra: the current tick may be almost over)."""
    return math.ceil(wall_time_s / TICK_S) + 1


def start_epoch_ticker(engine: wasmtime.Engine) -> threading.Thread:
    """Start the one thread that advances `engine`'s epoch every `TICK_S` (a daemon: it never blocks exit)."""

    def tick() -> None:
        while True:
            time.sleep(TICK_S)
            engine.increment_epoch()

    thread = threading.Thread(target=tick, name="wasm-epoch-ticker", daemon=True)
    thread.start()
    return thread


class EngineSet:
    """One engine (with its ticker) per profile, made on first use."""

    def __init__(self) -> None:
        self._engines: dict[EngineProfile, wasmtime.Engine] = {}

    def get(self, profile: EngineProfile) -> wasmtime.Engine:
        engine = self._engines.get(profile)
        if engine is None:
            engine = self._engines[profile] = profile.build()
            start_epoch_ticker(engine)
        return engine
