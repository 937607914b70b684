"""The deterministic profile's host functions: virtual clocks and seeded randomness for WASI preview 1.

They shadow `clock_time_get`, `clock_res_get`, `random_get` and `poll_oneoff`:

- clocks: one virtual clock that starts at 0 (monotonic) / `REALTIME_BASE_NS` (realtime) and advances
  `CLOCK_STEP_NS` on every read, so loops waiting for time still end; sleeping (`poll_oneoff` on a clock)
  advances it to the deadline at once;
- randomness: SHA-256 in counter mode over the seed, `sha256(seed || counter_be64)`, a stream any other
  implementation can reproduce;
- `poll_oneoff` on file descriptors reports them ready at once (stdin is a file, stdout a capture).

Everything else in WASI is deterministic given the same preopened files (file timestamps and directory
order excepted).
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Callable

import wasmtime

WASI = "wasi_snapshot_preview1"
REALTIME_BASE_NS = 1_700_000_000 * 1_000_000_000
CLOCK_STEP_NS = 1_000
ERRNO_SUCCESS = 0
ERRNO_FAULT = 21
ERRNO_INVAL = 28
CLOCK_IDS = range(4)  # realtime, monotonic, process cputime, thread cputime
SUBSCRIPTION_BYTES = 48
EVENT_BYTES = 32
EVENT_CLOCK = 0
SUBCLOCK_ABSTIME = 1


class DeterministicHost:
    """The virtual clock and random stream of one run."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._counter = 0
        self._pool = b""
        self.now_ns = 0

    def clock_ns(self, clock_id: int) -> int:
        """Read a clock; every read moves virtual time forward by `CLOCK_STEP_NS`."""
        value = self.now_ns + (REALTIME_BASE_NS if clock_id == 0 else 0)
        self.now_ns += CLOCK_STEP_NS
        return value

    def random_bytes(self, count: int) -> bytes:
        missing = max(0, count - len(self._pool))
        blocks = range(self._counter, self._counter + (missing + 31) // 32)
        self._pool += b"".join(hashlib.sha256(self._seed + struct.pack(">Q", n)).digest() for n in blocks)
        self._counter += len(blocks)
        data, self._pool = self._pool[:count], self._pool[count:]
        return data

    def poll(self, subscriptions: bytes) -> list[bytes]:
        """Events for a `poll_oneoff` call: ready fds if any, else the earliest clocks (time jumps there)."""
        subs = [
            subscriptions[offset : offset + SUBSCRIPTION_BYTES]
            for offset in range(0, len(subscriptions), SUBSCRIPTION_BYTES)
        ]
        fd_subs = [sub for sub in subs if sub[8] != EVENT_CLOCK]
        if fd_subs:
            return [_event(sub[:8], sub[8]) for sub in fd_subs]
        deadlines = []
        for sub in subs:
            clock_id, timeout, _, flags = struct.unpack_from("<IQQH", sub, 16)
            if clock_id not in CLOCK_IDS:
                return [_event(sub[:8], EVENT_CLOCK, ERRNO_INVAL)]
            base = REALTIME_BASE_NS if clock_id == 0 else 0
            deadline = timeout - base if flags & SUBCLOCK_ABSTIME else self.now_ns + timeout
            deadlines.append((deadline, sub))
        wake = min(deadline for deadline, _ in deadlines)
        self.now_ns = max(self.now_ns, wake)
        return [_event(sub[:8], EVENT_CLOCK) for deadline, sub in deadlines if deadline <= self.now_ns]


def _event(userdata: bytes, event_type: int, error: int = ERRNO_SUCCESS) -> bytes:
    return userdata + struct.pack("<HB", error, event_type) + bytes(EVENT_BYTES - 11)


class HostSlot(threading.local):
    """The deterministic host of the run executing on this thread (None outside a run)."""

    host: DeterministicHost | None = None


def _i32() -> wasmtime.ValType:
    return wasmtime.ValType.i32()


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory | None:
    memory = caller.get("memory")
    return memory if isinstance(memory, wasmtime.Memory) else None


def _write(caller: wasmtime.Caller, pointer: int, data: bytes) -> int:
    memory = _memory(caller)
    pointer &= 0xFFFFFFFF
    if memory is None or pointer + len(data) > memory.data_len(caller):
        return ERRNO_FAULT
    memory.write(caller, data, pointer)
    return ERRNO_SUCCESS


def _read(caller: wasmtime.Caller, pointer: int, length: int) -> bytes | None:
    memory = _memory(caller)
    pointer &= 0xFFFFFFFF
    if memory is None or pointer + length > memory.data_len(caller):
        return None
    return bytes(memory.read(caller, pointer, pointer + length))


def define_deterministic(linker: wasmtime.Linker, slot: HostSlot) -> None:
    """Shadow the nondeterministic WASI functions in `linker` (which already has WASI defined)."""

    def host() -> DeterministicHost:
        assert slot.host is not None, "deterministic function called outside a deterministic run"
        return slot.host

    def clock_res_get(caller: wasmtime.Caller, clock_id: int, result: int) -> int:
        if clock_id not in CLOCK_IDS:
            return ERRNO_INVAL
        return _write(caller, result, struct.pack("<Q", CLOCK_STEP_NS))

    def clock_time_get(caller: wasmtime.Caller, clock_id: int, precision: int, result: int) -> int:
        if clock_id not in CLOCK_IDS:
            return ERRNO_INVAL
        return _write(caller, result, struct.pack("<Q", host().clock_ns(clock_id)))

    def random_get(caller: wasmtime.Caller, buffer: int, length: int) -> int:
        length &= 0xFFFFFFFF
        memory = _memory(caller)
        if memory is None or (buffer & 0xFFFFFFFF) + length > memory.data_len(caller):
            return ERRNO_FAULT
        return _write(caller, buffer, host().random_bytes(length))

    def poll_oneoff(caller: wasmtime.Caller, subs: int, events: int, count: int, written: int) -> int:
        count &= 0xFFFFFFFF
        if count == 0:
            return ERRNO_INVAL
        data = _read(caller, subs, count * SUBSCRIPTION_BYTES)
        if data is None:
            return ERRNO_FAULT
        ready = host().poll(data)
        status = _write(caller, events, b"".join(ready))
        return status or _write(caller, written, struct.pack("<I", len(ready)))

    functions: list[tuple[str, list[wasmtime.ValType], Callable[..., int]]] = [
        ("clock_res_get", [_i32(), _i32()], clock_res_get),
        ("clock_time_get", [_i32(), wasmtime.ValType.i64(), _i32()], clock_time_get),
        ("random_get", [_i32(), _i32()], random_get),
        ("poll_oneoff", [_i32(), _i32(), _i32(), _i32()], poll_oneoff),
    ]
    linker.allow_shadowing = True
    for name, params, function in functions:
        linker.define_func(WASI, name, wasmtime.FuncType(params, [_i32()]), function, access_caller=True)
