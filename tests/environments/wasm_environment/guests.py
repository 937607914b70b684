"""Small WASI command modules written in WAT for the environment tests (benign and hostile ones)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import wasmtime

RIGHTS_ALL = "0x1fffffff"
RIGHTS_READ = "0x26"  # fd_read | fd_seek | fd_tell
O_CREAT_TRUNC = 9
O_TRUNC = 8

WASI_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"""
"""Every import the guests use; unused imports are harmless (the linker provides all of WASI)."""

HELPERS = """
  ;; write(fd, ptr, len) -> errno, using the iovec at 0..8 and nwritten at 8
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
  ;; open(dirfd, name, len, oflags, rights) -> errno; the new fd at 64
  (func $open (param $dir i32) (param $name i32) (param $len i32) (param $oflags i32) (param $rights i64)
    (result i32)
    (call $path_open (local.get $dir) (i32.const 0) (local.get $name) (local.get $len) (local.get $oflags)
      (local.get $rights) (local.get $rights) (i32.const 0) (i32.const 64)))
"""


def wat_string(data: bytes) -> str:
    """`data` as a WAT string literal."""
    return '"' + "".join(f"\\{byte:02x}" for byte in data) + '"'


def module(body: str, pages: int = 1) -> str:
    """A WASI command module: the imports and helpers above, `pages` of exported memory, then `body`."""
    return f'(module {WASI_IMPORTS} (memory (export "memory") {pages}) {HELPERS} {body})'


def fixed_output(stdout: bytes = b"", stderr: bytes = b"", exit_code: int = 0) -> str:
    """Writes `stdout` and `stderr`, then exits with `exit_code`."""
    err_at = 1024 + len(stdout)
    pages = (err_at + len(stderr)) // 65536 + 1
    return module(
        f"""
        (data (i32.const 1024) {wat_string(stdout)})
        (data (i32.const {err_at}) {wat_string(stderr)})
        (func (export "_start")
          (drop (call $write (i32.const 1) (i32.const 1024) (i32.const {len(stdout)})))
          (drop (call $write (i32.const 2) (i32.const {err_at}) (i32.const {len(stderr)})))
          (call $proc_exit (i32.const {exit_code})))
        """,
        pages,
    )


HELLO = fixed_output(b"hello\n")

ENDLESS = module('(func (export "_start") (loop $spin (br $spin)))')

UNREACHABLE = module('(func (export "_start") unreachable)')

MEMORY_BOMB = module(
    """
    (func (export "_start")
      (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
      unreachable)
    """
)

HUGE_MEMORY_MINIMUM = '(module (memory (export "memory") 1000) (func (export "_start")))'

DEEP_RECURSION = module(
    """
    (func $dive (param $n i64) (result i64)
      (i64.add (call $dive (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
    (func (export "_start") (drop (call $dive (i64.const 0))))
    """
)

FLOOD_STDOUT = module(
    """
    (func (export "_start") (local $errno i32)
      (loop $again
        (local.set $errno (call $write (i32.const 1) (i32.const 4096) (i32.const 65536)))
        (br_if $again (i32.eqz (local.get $errno))))
      (call $proc_exit (local.get $errno)))
    """,
    pages=2,
)

MISSING_IMPORT = '(module (import "env" "launch_missiles" (func)) (func (export "_start")))'

NO_START = '(module (memory (export "memory") 1) (func (export "main")))'


def read_file(path: bytes, dirfd: int = 3) -> str:
    """Opens `path` relative to preopen `dirfd`, copies up to 4 KiB of it to stdout; exits with the errno."""
    return module(
        f"""
        (data (i32.const 256) {wat_string(path)})
        (func (export "_start") (local $errno i32)
          (local.set $errno (call $open (i32.const {dirfd}) (i32.const 256) (i32.const {len(path)})
            (i32.const 0) (i64.const {RIGHTS_READ})))
          (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
          (i32.store (i32.const 0) (i32.const 8192))
          (i32.store (i32.const 4) (i32.const 4096))
          (local.set $errno
            (call $fd_read (i32.load (i32.const 64)) (i32.const 0) (i32.const 1) (i32.const 16)))
          (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
          (drop (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 16)))))
        """
    )


def write_file(path: bytes, oflags: int = O_CREAT_TRUNC, dirfd: int = 3) -> str:
    """Opens `path` under preopen `dirfd` with `oflags` and writes `pwned` into it; exits with the errno."""
    return module(
        f"""
        (data (i32.const 256) {wat_string(path)})
        (data (i32.const 512) "pwned")
        (func (export "_start") (local $errno i32)
          (local.set $errno
            (call $open (i32.const {dirfd}) (i32.const 256) (i32.const {len(path)}) (i32.const {oflags})
              (i64.const {RIGHTS_ALL})))
          (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
          (call $proc_exit (call $write (i32.load (i32.const 64)) (i32.const 512) (i32.const 5))))
        """
    )


def entropy(iterations: int = 1000) -> str:
    """Prints 16 random bytes, two clock readings, and a value computed in a loop of `iterations`."""
    return module(
        f"""
        (func (export "_start") (local $i i32) (local $x i64)
          (drop (call $random_get (i32.const 1024) (i32.const 16)))
          (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 1040)))
          (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 1048)))
          (local.set $x (i64.load (i32.const 1024)))
          (loop $mix
            (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                                   (i64.const 1442695040888963407)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $mix (i32.lt_u (local.get $i) (i32.const {iterations}))))
          (i64.store (i32.const 1056) (local.get $x))
          (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 40))))
        """
    )


NAN_BITS = module(
    """
    (data (i32.const 1024) "\\00\\00\\00\\00")
    (func (export "_start")
      (f32.store (i32.const 1028) (f32.div (f32.load (i32.const 1024)) (f32.load (i32.const 1024))))
      (drop (call $write (i32.const 1) (i32.const 1028) (i32.const 4))))
    """
)
"""Prints the bits of 0.0 / 0.0 (a NaN whose sign bit depends on the CPU unless canonicalised)."""

PROBE_FILES = {"request": b"request.json", "argv": b"argv.txt", "env": b"env.txt"}

PROBE_REPLY = {
    "min_memory_mib": 1.5,
    "subtask": {"params": {"n": 1}, "resources": ["part-0"]},
    "result": "SUCCESS",
    "reason": "probed",
    "discarded_subtask_ids": [],
    "has_pending_subtasks": False,
    "score": 2.0,
    "output": "request.json",
}
"""One reply that is valid for every operation of the guest contract (extra fields are ignored)."""


def probe(reply: bytes = json.dumps(PROBE_REPLY).encode()) -> str:
    """An app that saves what it was given (stdin, argv, env) and replies `reply`.

    It writes request.json, argv.txt and env.txt into preopens fd 4 and fd 7, which are `/output` for
    compute and `/task/task_outputs` for requestor operations (the other one is read-only or absent).
    """
    names = "".join(
        f"(data (i32.const {256 + 16 * index}) {wat_string(name)})"
        for index, name in enumerate(PROBE_FILES.values())
    )
    return module(
        f"""
        {names}
        (data (i32.const 1024) {wat_string(reply)})
        (func $read_stdin (result i32) (local $total i32)
          (block $done
            (loop $more
              (i32.store (i32.const 0) (i32.add (i32.const 65536) (local.get $total)))
              (i32.store (i32.const 4) (i32.sub (i32.const 65536) (local.get $total)))
              (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
              (br_if $done (i32.eqz (i32.load (i32.const 16))))
              (local.set $total (i32.add (local.get $total) (i32.load (i32.const 16))))
              (br $more)))
          (local.get $total))
        (func $save (param $dir i32) (param $name i32) (param $len i32) (param $ptr i32) (param $size i32)
          (if (i32.eqz (call $open (local.get $dir) (local.get $name) (local.get $len) (i32.const 9)
                                  (i64.const {RIGHTS_ALL})))
            (then
              (drop (call $write (i32.load (i32.const 64)) (local.get $ptr) (local.get $size)))
              (drop (call $fd_close (i32.load (i32.const 64)))))))
        (func $save_all (param $dir i32) (param $stdin i32) (param $argv i32) (param $env i32)
          (call $save (local.get $dir) (i32.const 256) (i32.const 12) (i32.const 65536) (local.get $stdin))
          (call $save (local.get $dir) (i32.const 272) (i32.const 8) (i32.const 135168) (local.get $argv))
          (call $save (local.get $dir) (i32.const 288) (i32.const 7) (i32.const 167936) (local.get $env)))
        (func (export "_start") (local $stdin i32) (local $argv i32) (local $env i32)
          (local.set $stdin (call $read_stdin))
          (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
          (drop (call $args_get (i32.const 131072) (i32.const 135168)))
          (drop (call $environ_sizes_get (i32.const 40) (i32.const 44)))
          (drop (call $environ_get (i32.const 163840) (i32.const 167936)))
          (local.set $argv (i32.load (i32.const 36)))
          (local.set $env (i32.load (i32.const 44)))
          (call $save_all (i32.const 4) (local.get $stdin) (local.get $argv) (local.get $env))
          (call $save_all (i32.const 7) (local.get $stdin) (local.get $argv) (local.get $env))
          (drop (call $write (i32.const 1) (i32.const 1024) (i32.const {len(reply)}))))
        """,
        pages=4,
    )


@dataclass(frozen=True)
class Guest:
    """A module on disk and its sha256."""

    path: Path
    sha256: str


def write_guest(directory: Path, name: str, source: str | bytes) -> Guest:
    """Write a module (WAT source is assembled; bytes are written as they are) and return it."""
    data = wasmtime.wat2wasm(source) if isinstance(source, str) else source
    path = directory / f"{name}.wasm"
    path.write_bytes(data)
    return Guest(path, hashlib.sha256(data).hexdigest())
