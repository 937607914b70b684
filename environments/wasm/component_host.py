"""The deterministic profile for components: WASI preview 2 clocks and randomness, shadowed.

wasmtime's WASI-p2 (`Linker.add_wasip2`, interfaces at version `WASI_P2_VERSION`; components importing an
older 0.2.x version are linked to these by semver) is redefined here, interface by interface, on top of
the same `DeterministicHost` as the core-module profile (one virtual clock, one seeded random stream):

- `wasi:clocks/wall-clock`, `wasi:clocks/monotonic-clock`: `now` reads the virtual clock;
- `wasi:random/random`, `wasi:random/insecure`: the seeded stream; `wasi:random/insecure-seed`: its
  next 16 bytes. A call may ask for at most `MAX_RANDOM_BYTES`.

The gap: `monotonic-clock.subscribe-instant` / `subscribe-duration` return a `wasi:io/poll` pollable,
a resource of wasmtime's own WASI that the Python API cannot make, and redefining `wasi:io/poll` would
break every stream's pollable. So under this profile a component cannot sleep or wait on a timer: those
two calls end the run with a HOST_ERROR trap naming them, instead of reading real time. Everything else
of WASI-p2 (files in the preopens, stdio) is wasmtime's own, deterministic given the same files (their
timestamps excepted: p2 `stat` is not shadowed).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from wasmtime import component as wc

from environments.wasm.deterministic import (
    MAX_RANDOM_BYTES,
    DeterministicHost,
    HostLimitHit,
    HostSlot,
)
from environments.wasm.runs import TrapKind

WASI_P2_VERSION = "0.2.12"
"""The WASI-p2 version wasmtime 50's `add_wasip2` defines (a test checks the shadows take effect)."""
REALTIME = 0
MONOTONIC = 1
CLOCK_RESOLUTION_NS = 1_000


def _datetime(ns: int) -> wc.Record:
    value = wc.Record()
    seconds, nanoseconds = divmod(ns, 1_000_000_000)
    setattr(value, "seconds", seconds)  # noqa: B010 (wasmtime records are plain attribute bags)
    setattr(value, "nanoseconds", nanoseconds)  # noqa: B010
    return value


class _Shadows:
    """The shadowing functions, reading the deterministic host of the run on this thread."""

    def __init__(self, slot: HostSlot) -> None:
        self._slot = slot

    def host(self) -> DeterministicHost:
        assert self._slot.host is not None, "deterministic function called outside a deterministic run"
        return self._slot.host

    def wall_now(self, store: Any) -> wc.Record:
        return _datetime(self.host().clock_ns(REALTIME))

    def wall_resolution(self, store: Any) -> wc.Record:
        return _datetime(CLOCK_RESOLUTION_NS)

    def monotonic_now(self, store: Any) -> int:
        return self.host().clock_ns(MONOTONIC)

    def monotonic_resolution(self, store: Any) -> int:
        return CLOCK_RESOLUTION_NS

    def sleep(self, store: Any, _when: int) -> None:
        raise HostLimitHit(
            TrapKind.HOST_ERROR,
            "the component tried to sleep or wait on a timer (wasi:clocks/monotonic-clock subscribe-*), "
            "which the deterministic profile of components does not offer",
        )

    def random_bytes(self, store: Any, count: int) -> bytes:
        if count > MAX_RANDOM_BYTES:
            raise HostLimitHit(
                TrapKind.HOST_CALL_LIMIT,
                f"the component asked wasi:random for {count} bytes in one call; "
                f"the limit is {MAX_RANDOM_BYTES}",
            )
        return self.host().random_bytes(count)

    def random_u64(self, store: Any) -> int:
        value: int = struct.unpack(">Q", self.host().random_bytes(8))[0]
        return value

    def insecure_seed(self, store: Any) -> tuple[int, int]:
        high, low = struct.unpack(">QQ", self.host().random_bytes(16))
        return high, low


def define_deterministic_p2(linker: wc.Linker, slot: HostSlot) -> None:
    """Shadow WASI-p2's clocks and randomness in `linker` (which already has `add_wasip2`)."""
    shadows = _Shadows(slot)
    interfaces: dict[str, dict[str, Callable[..., Any]]] = {
        "wasi:clocks/wall-clock": {"now": shadows.wall_now, "resolution": shadows.wall_resolution},
        "wasi:clocks/monotonic-clock": {
            "now": shadows.monotonic_now,
            "resolution": shadows.monotonic_resolution,
            "subscribe-instant": shadows.sleep,
            "subscribe-duration": shadows.sleep,
        },
        "wasi:random/random": {
            "get-random-bytes": shadows.random_bytes,
            "get-random-u64": shadows.random_u64,
        },
        "wasi:random/insecure": {
            "get-insecure-random-bytes": shadows.random_bytes,
            "get-insecure-random-u64": shadows.random_u64,
        },
        "wasi:random/insecure-seed": {"insecure-seed": shadows.insecure_seed},
    }
    linker.allow_shadowing = True
    with linker.root() as root:
        for interface, functions in interfaces.items():
            with root.add_instance(f"{interface}@{WASI_P2_VERSION}") as instance:
                for name, function in functions.items():
                    instance.add_func(name, function)
