"""The deterministic profile's host functions: virtual clocks, seeded randomness and pinned file times.

They shadow `clock_time_get`, `clock_res_get`, `random_get`, `poll_oneoff`, `fd_filestat_get` and
`path_filestat_get`:

- clocks: one virtual clock that starts at 0 (monotonic) / `REALTIME_BASE_NS` (realtime) and advances
  `CLOCK_STEP_NS` on every read, so loops waiting for time still end; sleeping (`poll_oneoff` on a clock)
  advances it to the deadline at once;
- randomness: SHA-256 in counter mode over the seed, `sha256(seed || counter_be64)`, a stream any other
  implementation can reproduce;
- `poll_oneoff` on file descriptors reports them ready at once (stdin is a file, stdout a capture);
- file times: the real `fd_filestat_get` / `path_filestat_get` answer, with access, modification and
  change times all set to `REALTIME_BASE_NS` (a file written during the run looks as old as the others).
  The real functions take the guest's memory from their calling instance, so a tiny shim instance that
  exports the guest's memory calls them (`FILESTAT_SHIM`, made on a run's first file-stat call).

Every host call is bounded: `random_get` gives at most `MAX_RANDOM_BYTES` a call, `poll_oneoff` takes
at most `MAX_SUBSCRIPTIONS`, and each checks the run's wall-clock deadline, so no host call outlives it
(the epoch interrupts only wasm code). A bound hit raises `HostLimitHit`, which ends the run with a trap.

Everything else in WASI is deterministic given the same preopened files (inode numbers and directory
order excepted).
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Callable

import wasmtime

from environments.wasm.runs import TrapKind

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
MAX_RANDOM_BYTES = 1 << 20
"""The most bytes one `random_get` call may ask for (libc asks for at most 256)."""
MAX_SUBSCRIPTIONS = 4096
"""The most subscriptions one `poll_oneoff` call may pass."""
RANDOM_CHUNK_BYTES = 64 << 10
FILESTAT_BYTES = 64
FILESTAT_TIMES_OFFSET = 40  # atim, mtim, ctim: three u64 at the end of a WASI filestat
FILESTAT_SHIM = f"""
(module
  (import "{WASI}" "fd_filestat_get" (func $fd (param i32 i32) (result i32)))
  (import "{WASI}" "path_filestat_get" (func $path (param i32 i32 i32 i32 i32) (result i32)))
  (import "guest" "memory" (memory 0))
  (export "memory" (memory 0))
  (func (export "fd_filestat_get") (param i32 i32) (result i32) (call $fd (local.get 0) (local.get 1)))
  (func (export "path_filestat_get") (param i32 i32 i32 i32 i32) (result i32)
    (call $path (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4))))
"""
"""Calls the real WASI file-stat functions on the guest's memory (they read memory from their caller)."""


class HostLimitHit(Exception):
    """A host call hit a bound of its run; it ends the run with a trap of `kind`."""

    def __init__(self, kind: TrapKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class DeterministicHost:
    """The virtual clock and random stream of one run."""

    def __init__(self, seed: str, wall_time_s: float) -> None:
        self._seed = seed.encode()
        self._counter = 0
        self._pool = b""
        self.now_ns = 0
        self.wall_time_s = wall_time_s
        self._deadline = time.monotonic() + wall_time_s
        self.filestat_shim: dict[str, wasmtime.Func] | None = None

    def check_deadline(self, call: str) -> None:
        """Raise `HostLimitHit` once the run's wall-clock deadline has passed."""
        if time.monotonic() > self._deadline:
            raise HostLimitHit(
                TrapKind.DEADLINE,
                f"wall-clock deadline of {self.wall_time_s:g} s exceeded: the run was interrupted in {call}",
            )

    def clock_ns(self, clock_id: int) -> int:
        """Read a clock; every read moves virtual time forward by `CLOCK_STEP_NS`."""
        value = self.now_ns + (REALTIME_BASE_NS if clock_id == 0 else 0)
        self.now_ns += CLOCK_STEP_NS
        return value

    def random_bytes(self, count: int) -> bytes:
        """The next `count` bytes of the stream, made in chunks while the run's deadline has not passed."""
        while len(self._pool) < count:
            self.check_deadline("random_get")
            missing = min(count - len(self._pool), RANDOM_CHUNK_BYTES)
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


def _filestat_shim(
    caller: wasmtime.Caller, wasi: wasmtime.Linker, shim: wasmtime.Module
) -> dict[str, wasmtime.Func]:
    """The shim's exports for this run: the real file-stat functions reading the guest's memory."""
    memory = _memory(caller)
    if memory is None:
        raise HostLimitHit(TrapKind.TRAP, "file stat called by a module that exports no memory")
    imports = [wasi.get(caller, WASI, "fd_filestat_get"), wasi.get(caller, WASI, "path_filestat_get"), memory]
    exports = wasmtime.Instance(caller, shim, imports).exports(caller)
    return {
        name: func
        for name in ("fd_filestat_get", "path_filestat_get")
        if isinstance(func := exports[name], wasmtime.Func)
    }


def define_deterministic(linker: wasmtime.Linker, slot: HostSlot) -> None:
    """Shadow the nondeterministic WASI functions in `linker` (which already has WASI defined)."""
    real_wasi = wasmtime.Linker(linker.engine)
    real_wasi.define_wasi()
    shim = wasmtime.Module(linker.engine, bytes(wasmtime.wat2wasm(FILESTAT_SHIM)))

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
        if length > MAX_RANDOM_BYTES:
            raise HostLimitHit(
                TrapKind.HOST_CALL_LIMIT,
                f"random_get of {length} bytes exceeds the host-call limit of {MAX_RANDOM_BYTES} bytes",
            )
        memory = _memory(caller)
        if memory is None or (buffer & 0xFFFFFFFF) + length > memory.data_len(caller):
            return ERRNO_FAULT
        return _write(caller, buffer, host().random_bytes(length))

    def poll_oneoff(caller: wasmtime.Caller, subs: int, events: int, count: int, written: int) -> int:
        count &= 0xFFFFFFFF
        if count == 0:
            return ERRNO_INVAL
        if count > MAX_SUBSCRIPTIONS:
            raise HostLimitHit(
                TrapKind.HOST_CALL_LIMIT,
                f"poll_oneoff with {count} subscriptions exceeds the host-call limit of {MAX_SUBSCRIPTIONS}",
            )
        host().check_deadline("poll_oneoff")
        data = _read(caller, subs, count * SUBSCRIPTION_BYTES)
        if data is None:
            return ERRNO_FAULT
        ready = host().poll(data)
        status = _write(caller, events, b"".join(ready))
        return status or _write(caller, written, struct.pack("<I", len(ready)))

    def stat_with_pinned_times(caller: wasmtime.Caller, name: str, buffer: int, *args: int) -> int:
        run = host()
        if run.filestat_shim is None:
            run.filestat_shim = _filestat_shim(caller, real_wasi, shim)
        status = run.filestat_shim[name](caller, *args, buffer)
        if status != ERRNO_SUCCESS:
            return int(status)
        return _write(
            caller,
            (buffer & 0xFFFFFFFF) + FILESTAT_TIMES_OFFSET,
            struct.pack("<QQQ", *[REALTIME_BASE_NS] * 3),
        )

    def fd_filestat_get(caller: wasmtime.Caller, fd: int, buffer: int) -> int:
        return stat_with_pinned_times(caller, "fd_filestat_get", buffer, fd)

    def path_filestat_get(
        caller: wasmtime.Caller, fd: int, flags: int, path: int, length: int, buffer: int
    ) -> int:
        return stat_with_pinned_times(caller, "path_filestat_get", buffer, fd, flags, path, length)

    functions: list[tuple[str, list[wasmtime.ValType], Callable[..., int]]] = [
        ("clock_res_get", [_i32(), _i32()], clock_res_get),
        ("clock_time_get", [_i32(), wasmtime.ValType.i64(), _i32()], clock_time_get),
        ("random_get", [_i32(), _i32()], random_get),
        ("poll_oneoff", [_i32(), _i32(), _i32(), _i32()], poll_oneoff),
        ("fd_filestat_get", [_i32(), _i32()], fd_filestat_get),
        ("path_filestat_get", [_i32()] * 5, path_filestat_get),
    ]
    linker.allow_shadowing = True
    for name, params, function in functions:
        linker.define_func(WASI, name, wasmtime.FuncType(params, [_i32()]), function, access_caller=True)
